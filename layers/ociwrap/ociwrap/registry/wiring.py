"""Wiring: the registry service of this deployment, built from its settings.

The one composition root: the local gateway, the Lambda and tests build the same
thing from the same settings. `build_service` makes the deployment's parts (S3, upstreams
over HTTP with their logins, the signing key) and `assemble` puts the services together
over any bucket and upstream. A misconfiguration is a clear 503, never a crash.
"""

from __future__ import annotations

from collections.abc import Callable

from ociwrap.bucket.interface import Bucket
from ociwrap.bucket.links import Links
from ociwrap.bucket.sources import SourceRecords
from ociwrap.bucket.store import Store
from ociwrap.names.reference import Registry
from ociwrap.registry.admission import Admission
from ociwrap.registry.attestations import Attestations
from ociwrap.registry.blobs import Blobs
from ociwrap.registry.compositions import Composer
from ociwrap.registry.container_tokens import ContainerTokens
from ociwrap.registry.imagesource import ImageSource
from ociwrap.registry.mirror import Mirror
from ociwrap.registry.proxy import ProxyService
from ociwrap.registry.service import RegistryService
from ociwrap.registry.settings import Settings
from ociwrap.registry.signatures import Signatures
from ociwrap.registry.verification import SignatureCheck
from ociwrap.registry.wrapped import WrappedService
from ociwrap.runtime import errors
from ociwrap.runtime.aws import make_client, make_s3_client
from ociwrap.runtime.memcache import BoundedCache
from ociwrap.runtime.secrets import SecretDocument
from ociwrap.signing.policy_source import PolicySource
from ociwrap.signing.signers import FileSigner, KmsSigner, Signer
from ociwrap.upstream.ecr import EcrLogins
from ociwrap.upstream.fetch import Fetcher
from ociwrap.upstream.interface import Upstream
from ociwrap.upstream.logins import UpstreamLogins
from ociwrap.upstream.transport import Transport


def build_service(settings: Settings | None = None) -> RegistryService:
    """The service for this deployment; a misconfiguration is a clear 503, not a crash."""
    settings = settings or settings_from_env()
    store = Store(make_s3_client(settings.s3_endpoint_url), settings.bucket)
    logins = upstream_logins(settings)
    return assemble(
        settings, store, http_upstream(settings, logins), logins.private, make_signer(settings)
    )


def settings_from_env() -> Settings:
    """The settings of this deployment; a misconfiguration is a clear 503, not a crash."""
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise errors.storage_unavailable(f"registry misconfigured: {exc}") from exc


def upstream_logins(settings: Settings) -> UpstreamLogins:
    """The credentials upstreams are asked with: a secret or file, and ECR's own logins."""
    credentials = SecretDocument(
        "UPSTREAM_CREDENTIALS_SECRET",
        settings.upstream_credentials_secret,
        "UPSTREAM_CREDENTIALS_FILE",
        settings.upstream_credentials_file,
    )
    ecr = EcrLogins(lambda region: make_client("ecr", "Amazon ECR", region))
    return UpstreamLogins(credentials, ecr if settings.ecr_logins else None)


def http_upstream(settings: Settings, logins: UpstreamLogins) -> Fetcher:
    """Upstream registries over HTTP, marking each request with this registry's own name
    (so a loop back to it is refused)."""
    return Fetcher(Transport(logins, hop=settings.hop_name))


def anonymous(registry: Registry) -> bool:
    """No upstream is asked with a login (what `private` says without credentials)."""
    return False


def assemble(
    settings: Settings,
    store: Bucket,
    fetcher: Upstream,
    private: Callable[[Registry], bool] = anonymous,
    signer: Signer | None = None,
) -> RegistryService:
    """The service graph over a bucket and an upstream: the deployment's (S3 and HTTP) or
    any other implementation of the two interfaces. `private` says which registries are
    fetched with a login (their links expire, their signed URLs are not reused)."""
    admission = Admission(settings.upstream_allow, settings.public_hostname)
    cache = BoundedCache(max_entries=1024, max_bytes=48 * 1024 * 1024)
    links = Links(store, cache, settings.tag_ttl_seconds, private)
    images = ImageSource(
        store,
        fetcher,
        links,
        tag_ttl_seconds=settings.tag_ttl_seconds,
        stale_if_error_seconds=settings.stale_if_error_seconds,
        private=private,
        cache=cache,
    )
    mirror = Mirror(store, links, settings.mirror_max_bytes)
    blobs = Blobs(
        store,
        fetcher,
        mirror,
        settings.presign_ttl_seconds,
        cache,
        private=private,
        retention_days=settings.cache_retention_days,
    )
    sources = SourceRecords(store, cache)
    signatures = attestations = None
    if signer is not None:
        assert settings.public_hostname is not None  # Settings requires it for signing
        signatures = Signatures(signer, settings.public_hostname, store, images, sources, cache)
        attestations = Attestations(signer, settings.public_hostname, store, images, sources, cache)
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
    composer = Composer(
        images, store, sources, cache, signatures=signatures, attestations=attestations, check=check
    )
    users = None
    if settings.registry_auth == "basic":
        from ociwrap.registry.access import Users  # bcrypt, only where pulls need a login

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
        WrappedService(
            composer, sources, images, blobs, signatures, private=private, attestations=attestations
        ),
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
