"""The registry as the handler sees it: names and references in, values out.

Dispatches each request to the pull-through proxy or to wrapped names (built
by `wiring`). Every upstream repository a name stands for is admitted here first
(`admission`: UPSTREAM_ALLOW, never this registry itself), whatever is cached for
it. Data flows one way: request → service → image source / composer → store /
upstream → value (`results`: content, a location, a size, a page of tags, referrers),
which the handler says in HTTP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ociwrap.image.recipes import Recipe, from_wrap
from ociwrap.names.digest import check_digest
from ociwrap.names.reference import (
    Repository,
    check_reference,
    parse_token_name,
    parse_wrap_name,
    resolve_repository,
)
from ociwrap.registry.admission import Admission
from ociwrap.registry.container_tokens import ContainerTokens
from ociwrap.registry.proxy import ProxyService
from ociwrap.registry.results import BlobSize, Content, Redirect, Referrers, TagPage
from ociwrap.registry.settings import Settings
from ociwrap.registry.wrapped import WrappedService
from ociwrap.runtime import errors
from ociwrap.signing.signers import Signer

if TYPE_CHECKING:
    from ociwrap.registry.access import Users


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
        self.hop_name = settings.hop_name
        self.proxy = proxy
        self.wrapped = wrapped
        self.tokens = tokens
        self.users = users  # who may pull, with REGISTRY_AUTH=basic
        self.signer = signer  # signs compositions, when signing is configured

    def recipe(self, name: str) -> Recipe | None:
        """The recipe a wrapped name stands for (wrap path or token image), admitted;
        None when the name is no wrapped name."""
        token_name = parse_token_name(name)
        if token_name is not None:
            token, image = token_name
            return self.admission.recipe(self.tokens.recipe(token, image))
        wrap = parse_wrap_name(name, self.aliases)
        return self.admission.recipe(from_wrap(wrap)) if wrap is not None else None

    def repository(self, name: str) -> Repository:
        """The upstream repository a proxied name stands for, admitted."""
        return self.admission.repository(resolve_repository(name, self.aliases))

    def manifest(self, name: str, ref: str, accept: list[str]) -> Content:
        """A manifest or index by tag or digest (a HEAD is its answer without the body)."""
        check_reference(ref)
        recipe = self.recipe(name)
        if recipe is not None:
            return self.wrapped.manifest(recipe, ref)
        return self.proxy.manifest(self.repository(name), ref, accept)

    def blob(self, name: str, digest: str) -> Redirect:
        """Where the client fetches a blob's bytes (never from this registry)."""
        check_digest(digest)
        recipe = self.recipe(name)
        if recipe is not None:
            return self.wrapped.blob(recipe, digest)
        return self.proxy.blob(self.repository(name), digest)

    def blob_size(self, name: str, digest: str) -> BlobSize:
        """A blob's size, what a HEAD asks (no location: a HEAD cannot follow a GET-signed one)."""
        check_digest(digest)
        recipe = self.recipe(name)
        if recipe is not None:
            return self.wrapped.blob_size(recipe, digest)
        return self.proxy.blob_size(self.repository(name), digest)

    def readable_config(self, name: str, digest: str, limit: int) -> bytes | None:
        """A document of at most `limit` bytes this registry holds for the name, for the
        page: a wrapped name's generated config (or its signature's or provenance's
        blobs), from the bucket, made again if it expired; or a proxied name's config a
        composition read. None for every other blob, which stays a redirect; a digest
        that is no blob of a wrapped name is BLOB_UNKNOWN as for `blob`."""
        check_digest(digest)
        recipe = self.recipe(name)
        if recipe is not None:
            body = self.wrapped.generated_blob(recipe, digest)
            return body if body is not None and len(body) <= limit else None
        return self.proxy.held_config(self.repository(name), digest, limit)

    def referrers(self, name: str, digest: str, artifact_type: str | None) -> Referrers:
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

    def tags(self, name: str, n: str | None, last: str | None) -> TagPage:
        recipe = self.recipe(name)
        if recipe is not None:
            return self.wrapped.tags(recipe)
        return self.proxy.tags(name, self.repository(name), n, last)
