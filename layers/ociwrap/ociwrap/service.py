"""The registry as the handler sees it: names and references in, replies out.

Dispatches each request to the pull-through proxy or to wrapped names, and
wires both from settings, so the local gateway, the Lambda and tests build the
same thing. Every upstream repository a name stands for is admitted here first
(`admission`: UPSTREAM_ALLOW, never this registry itself), whatever is cached for
it. Data flows one way: request → service → image source / composer → store /
upstream → reply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ociwrap import errors, hops
from ociwrap.admission import Admission
from ociwrap.aws import make_client, make_s3_client
from ociwrap.blobs import Blobs
from ociwrap.composer import Composer
from ociwrap.config import Settings
from ociwrap.container_tokens import ContainerTokens
from ociwrap.digest import check_digest
from ociwrap.ecr import EcrLogins
from ociwrap.imagesource import ImageSource
from ociwrap.links import Links
from ociwrap.logins import UpstreamLogins
from ociwrap.memcache import BoundedCache
from ociwrap.mirror import Mirror
from ociwrap.proxy import ProxyService
from ociwrap.recipes import Recipe, from_wrap
from ociwrap.reference import Repository, check_reference, parse_wrap_name, resolve_repository
from ociwrap.replies import Reply
from ociwrap.secrets import SecretDocument
from ociwrap.signatures import Signatures
from ociwrap.signing import FileSigner, KmsSigner, Signer
from ociwrap.sources import SourceRecords
from ociwrap.store import Store
from ociwrap.upstream.fetch import Fetcher
from ociwrap.upstream.transport import Transport
from ociwrap.verification import PolicySource, SignatureCheck
from ociwrap.wrapped import WrappedService

if TYPE_CHECKING:
    from ociwrap.access import Users


#: Container token images: `wt/<token>/<base repository>`.
TOKEN_PREFIX = "wt/"


class RegistryService:
    """Pull requests for any repository name, proxied or wrapped."""

    def __init__(
        self,
        settings: Settings,
        proxy: ProxyService,
        wrapped: WrappedService,
        tokens: ContainerTokens,
        users: Users | None = None,
        signer: Signer | None = None,
        *,
        admission: Admission,
    ) -> None:
        self.settings = settings
        self.aliases = settings.aliases
        self.admission = admission  # every upstream repository a name reaches passes here
        self.hop_name = hops.own_name(settings.public_hostname, settings.bucket)
        self.proxy = proxy
        self.wrapped = wrapped
        self.tokens = tokens
        self.users = users  # who may pull, with REGISTRY_AUTH=basic
        self.signer = signer  # signs compositions, when signing is configured

    def recipe(self, name: str) -> Recipe | None:
        """The recipe a wrapped name stands for (wrap path or token image), admitted;
        None when the name is no wrapped name."""
        if name.startswith(TOKEN_PREFIX):
            token, _, image = name[len(TOKEN_PREFIX) :].partition("/")
            return self.admission.recipe(self.tokens.recipe(token, image))
        wrap = parse_wrap_name(name, self.aliases)
        return self.admission.recipe(from_wrap(wrap)) if wrap is not None else None

    def repository(self, name: str) -> Repository:
        """The upstream repository a proxied name stands for, admitted."""
        return self.admission.repository(resolve_repository(name, self.aliases))

    def manifest(self, name: str, ref: str, accept: list[str], head: bool) -> Reply:
        check_reference(ref)
        recipe = self.recipe(name)
        if recipe is not None:
            return self.wrapped.manifest(recipe, ref, head)
        return self.proxy.manifest(self.repository(name), ref, accept, head)

    def blob(self, name: str, digest: str, head: bool, inline_config_max_bytes: int = 0) -> Reply:
        """A blob; a wrapped name's generated config of up to `inline_config_max_bytes`
        comes as bytes (the page's reads), every other answer is a redirect or a size."""
        check_digest(digest)
        recipe = self.recipe(name)
        if recipe is not None:
            return self.wrapped.blob(
                recipe, digest, head, inline_config_max_bytes=inline_config_max_bytes
            )
        return self.proxy.blob(self.repository(name), digest, head)

    def referrers(self, name: str, digest: str, artifact_type: str | None) -> Reply:
        check_digest(digest)
        recipe = self.recipe(name)
        if recipe is not None:
            return self.wrapped.referrers(recipe, digest, artifact_type)
        return self.proxy.referrers(self.repository(name), digest, artifact_type)

    def signing_key(self) -> bytes:
        """The public key signatures of compositions verify with (PEM)."""
        if self.signer is None:
            raise errors.name_unknown(
                "signing is not configured: set SIGNING_KMS_KEY_ID or SIGNING_KEY_FILE"
            )
        return self.signer.public_key_pem()

    def tags(self, name: str, n: str | None, last: str | None) -> Reply:
        recipe = self.recipe(name)
        if recipe is not None:
            return self.wrapped.tags(recipe)
        return self.proxy.tags(name, self.repository(name), n, last)


def build_service(settings: Settings | None = None) -> RegistryService:
    """The service for this deployment; a misconfiguration is a clear 503, not a crash."""
    if settings is None:
        try:
            settings = Settings.from_env()
        except ValueError as exc:
            raise errors.storage_unavailable(f"registry misconfigured: {exc}") from exc
    store = Store(make_s3_client(settings.s3_endpoint_url), settings.bucket)
    credentials = SecretDocument(
        "UPSTREAM_CREDENTIALS_SECRET",
        settings.upstream_credentials_secret,
        "UPSTREAM_CREDENTIALS_FILE",
        settings.upstream_credentials_file,
    )
    ecr = EcrLogins(lambda region: make_client("ecr", "Amazon ECR", region))
    logins = UpstreamLogins(credentials, ecr if settings.ecr_logins else None)
    admission = Admission(settings.upstream_allow, settings.public_hostname)
    hop = hops.own_name(settings.public_hostname, settings.bucket)
    fetcher = Fetcher(Transport(logins, hop=hop))
    cache = BoundedCache(max_entries=1024, max_bytes=48 * 1024 * 1024)
    links = Links(store, cache, settings.tag_ttl_seconds, logins.private)
    images = ImageSource(
        store,
        fetcher,
        links,
        tag_ttl_seconds=settings.tag_ttl_seconds,
        stale_if_error_seconds=settings.stale_if_error_seconds,
        cache=cache,
    )
    mirror = Mirror(store, links, settings.mirror_max_bytes)
    blobs = Blobs(
        store,
        fetcher,
        mirror,
        settings.presign_ttl_seconds,
        cache,
        retention_days=settings.cache_retention_days,
    )
    sources = SourceRecords(store, cache)
    signer = make_signer(settings)
    signatures = None
    if signer is not None:
        assert settings.public_hostname is not None  # Settings requires it for signing
        signatures = Signatures(signer, settings.public_hostname, store, images, sources, cache)
    check = None
    if settings.wrapper_policy_secret or settings.wrapper_policy_file:
        policy = PolicySource(
            SecretDocument(
                "WRAPPER_POLICY_SECRET",
                settings.wrapper_policy_secret,
                "WRAPPER_POLICY_FILE",
                settings.wrapper_policy_file,
            )
        )
        check = SignatureCheck(policy.policy, fetcher, cache)
    composer = Composer(images, store, sources, cache, signatures=signatures, check=check)
    users = None
    if settings.registry_auth == "basic":
        from ociwrap.access import Users  # bcrypt, only where pulls need a login

        users = Users(
            SecretDocument(
                "REGISTRY_AUTH_SECRET",
                settings.registry_auth_secret,
                "REGISTRY_AUTH_FILE",
                settings.registry_auth_file,
            )
        )
    return RegistryService(
        settings,
        ProxyService(images, fetcher, blobs),
        WrappedService(composer, sources, images, blobs, signatures),
        ContainerTokens(store, settings.aliases, settings.token_max_ttl_seconds, admission),
        users,
        signer,
        admission=admission,
    )


def make_signer(settings: Settings) -> Signer | None:
    """The key compositions are signed with: KMS in Lambda, a PEM file locally."""
    if settings.signing_kms_key_id:
        return KmsSigner(make_client("kms", "AWS KMS"), settings.signing_kms_key_id)
    if settings.signing_key_file:
        return FileSigner(settings.signing_key_file)
    return None
