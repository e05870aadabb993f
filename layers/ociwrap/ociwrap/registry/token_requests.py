"""Container token requests (`POST /v1alpha/tokens`): validated, then made a recipe.

The request is client input: every field is checked for type, size and content, and
the first one that is wrong is named in a `400 INVALID_REQUEST`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ociwrap.image.jsondoc import DocumentError, parse_json
from ociwrap.image.recipes import Overrides, Recipe
from ociwrap.names.reference import (
    ImageRef,
    parse_docker_reference,
    repository_of,
    token_image_name,
)
from ociwrap.runtime.errors import RegistryError

MAX_WRAPPERS = 8
MAX_LIST_ITEMS = 64
MAX_MAP_ITEMS = 256
MAX_STRING = 4096
DEFAULT_TTL_SECONDS = 86400
_PLATFORM = re.compile(r"[a-z0-9_.-]{1,32}/[a-z0-9_.-]{1,32}(?:/[a-z0-9_.-]{1,32})?")
_ENV_NAME = re.compile(r"[^=\x00]{1,256}")
FIELDS = (
    "image",
    "wrappers",
    "entrypoint",
    "cmd",
    "env",
    "labels",
    "workingDir",
    "user",
    "platforms",
    "ttlSeconds",
)


def invalid_field(name: str, why: str) -> RegistryError:
    """`400 INVALID_REQUEST` naming the field and what is wrong with it."""
    return RegistryError("INVALID_REQUEST", f"{name}: {why}", detail={"field": name}, status=400)


def _string(name: str, value: Any, limit: int = MAX_STRING) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise invalid_field(name, f"expected a non-empty string of at most {limit} characters")
    if "\x00" in value:
        raise invalid_field(name, "must not contain NUL")
    return value


def _strings(name: str, value: Any, limit: int = MAX_LIST_ITEMS) -> list[str]:
    if not isinstance(value, list) or len(value) > limit:
        raise invalid_field(name, f"expected a list of at most {limit} strings")
    return [_string(f"{name}[{n}]", item) for n, item in enumerate(value)]


def _mapping(name: str, value: Any, key: re.Pattern[str] | None = None) -> dict[str, str]:
    """An object of strings; names and values without NUL, which no config, environment
    or label can hold (a C string ends there: what a runtime sets is not what was asked)."""
    if not isinstance(value, Mapping) or len(value) > MAX_MAP_ITEMS:
        raise invalid_field(name, f"expected an object of at most {MAX_MAP_ITEMS} strings")
    result: dict[str, str] = {}
    for item_key, item_value in value.items():
        field = f"{name}.{_escaped(item_key[:40])}"
        if "\x00" in item_key:
            raise invalid_field(field, "the name must not contain NUL")
        if key is not None and not key.fullmatch(item_key):
            raise invalid_field(field, "is not a valid name")
        if not isinstance(item_value, str) or len(item_value) > MAX_STRING:
            raise invalid_field(field, "expected a string")
        if "\x00" in item_value:
            raise invalid_field(field, "must not contain NUL")
        result[item_key] = item_value
    return result


def _escaped(text: str) -> str:
    """`text` as an error names it: control characters written as escapes (`\\x00`)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _reference(name: str, value: Any, aliases: dict[str, str]) -> ImageRef:
    text = _string(name, value, 512)
    try:
        return parse_docker_reference(text, aliases)
    except RegistryError as exc:
        raise invalid_field(name, exc.message) from exc


@dataclass(frozen=True)
class TokenRequest:
    """A validated token request, kept as given (normalised JSON) and as parsed."""

    document: dict[str, Any]
    base: ImageRef
    wrappers: tuple[ImageRef, ...]
    overrides: Overrides
    ttl_seconds: int

    @property
    def repository(self) -> str:
        """The base repository as written: the name a token image is pulled under."""
        return repository_of(self.document["image"])

    @property
    def tag(self) -> str:
        return self.base.tag or "latest"


def parse_token_request(body: Any, aliases: dict[str, str], max_ttl: int) -> TokenRequest:
    """Validate a token request; `400 INVALID_REQUEST` names the first field that is wrong."""
    if not isinstance(body, Mapping):
        raise invalid_field("(body)", "expected a JSON object")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise invalid_field(unknown[0], f"unknown field; known fields are {', '.join(FIELDS)}")
    if "image" not in body:
        raise invalid_field("image", "required")
    base = _reference("image", body["image"], aliases)
    wrappers_value = body.get("wrappers")
    if not isinstance(wrappers_value, list) or not 1 <= len(wrappers_value) <= MAX_WRAPPERS:
        raise invalid_field("wrappers", f"expected a list of 1 to {MAX_WRAPPERS} references")
    wrappers = tuple(
        _reference(f"wrappers[{n}]", item, aliases) for n, item in enumerate(wrappers_value)
    )
    document: dict[str, Any] = {"image": body["image"], "wrappers": list(wrappers_value)}
    overrides: dict[str, Any] = {}
    for name, key in (("entrypoint", "entrypoint"), ("cmd", "cmd")):
        if body.get(name) is not None:
            document[name] = _strings(name, body[name])
            overrides[key] = tuple(document[name])
    if body.get("env") is not None:
        document["env"] = _mapping("env", body["env"], _ENV_NAME)
        overrides["env"] = tuple(sorted(document["env"].items()))
    if body.get("labels") is not None:
        document["labels"] = _mapping("labels", body["labels"])
        overrides["labels"] = tuple(sorted(document["labels"].items()))
    if body.get("workingDir") is not None:
        document["workingDir"] = _string("workingDir", body["workingDir"])
        if not document["workingDir"].startswith("/"):
            raise invalid_field("workingDir", "must be an absolute path")
        overrides["working_dir"] = document["workingDir"]
    if body.get("user") is not None:
        document["user"] = _string("user", body["user"], 256)
        overrides["user"] = document["user"]
    if body.get("platforms") is not None:
        platforms = _strings("platforms", body["platforms"], 16)
        for n, platform in enumerate(platforms):
            if not _PLATFORM.fullmatch(platform):
                raise invalid_field(f"platforms[{n}]", "expected os/architecture[/variant]")
        if not platforms:
            raise invalid_field("platforms", "expected at least one platform")
        document["platforms"] = platforms
        overrides["platforms"] = tuple(platforms)
    ttl = body.get("ttlSeconds", min(DEFAULT_TTL_SECONDS, max_ttl))
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= max_ttl:
        raise invalid_field("ttlSeconds", f"expected a whole number from 1 to {max_ttl}")
    document["ttlSeconds"] = ttl
    return TokenRequest(document, base, wrappers, Overrides(**overrides), ttl)


def token_recipe(token: str, request: TokenRequest) -> Recipe:
    """The recipe of a token image, served as `wt/<token>/<base repository>`."""
    return Recipe(
        name=token_image_name(token, request.repository),
        scope=f"token-{token}",
        base=request.base,
        wrappers=request.wrappers,
        overrides=request.overrides,
        tag=request.tag,
    )


def parse_token_body(body: bytes, aliases: dict[str, str], max_ttl: int) -> TokenRequest:
    """A request body (bytes as the client sent them), parsed and validated."""
    try:
        document = parse_json(body)
    except DocumentError as exc:
        raise invalid_field("(body)", f"not a JSON document: {exc}") from exc
    return parse_token_request(document, aliases, max_ttl)
