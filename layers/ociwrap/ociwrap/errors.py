"""OCI distribution-spec errors and the HTTP status each one is answered with.

Every failure a client can see is a `RegistryError`; the handler turns it into
`{"errors": [{"code", "message", "detail"}]}` so clients print a useful line
instead of a stack trace.
"""

from __future__ import annotations

import json
from typing import Any

STATUS_BY_CODE: dict[str, int] = {
    "BLOB_UNKNOWN": 404,
    "MANIFEST_UNKNOWN": 404,
    "NAME_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "DIGEST_INVALID": 400,
    "MANIFEST_INVALID": 400,
    "SIZE_INVALID": 400,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "UNSUPPORTED": 405,
    "TOOMANYREQUESTS": 429,
    "UNAVAILABLE": 502,
}


class RegistryError(Exception):
    """An error with a distribution-spec code, a human message and an HTTP status."""

    def __init__(
        self, code: str, message: str, detail: Any = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
        self.status = status if status is not None else STATUS_BY_CODE.get(code, 400)

    def body(self) -> bytes:
        """The JSON error body the distribution spec prescribes."""
        entry: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return json.dumps({"errors": [entry]}).encode()

    def __repr__(self) -> str:
        return f"RegistryError({self.code!r}, {self.message!r}, status={self.status})"


def name_invalid(message: str, detail: Any = None) -> RegistryError:
    return RegistryError("NAME_INVALID", message, detail)


def name_unknown(message: str, detail: Any = None) -> RegistryError:
    return RegistryError("NAME_UNKNOWN", message, detail)


def manifest_unknown(message: str, detail: Any = None) -> RegistryError:
    return RegistryError("MANIFEST_UNKNOWN", message, detail)


def manifest_invalid(message: str, detail: Any = None) -> RegistryError:
    return RegistryError("MANIFEST_INVALID", message, detail)


def blob_unknown(message: str, detail: Any = None) -> RegistryError:
    return RegistryError("BLOB_UNKNOWN", message, detail)


def digest_invalid(message: str, detail: Any = None) -> RegistryError:
    return RegistryError("DIGEST_INVALID", message, detail)


def unsupported(message: str, detail: Any = None) -> RegistryError:
    return RegistryError("UNSUPPORTED", message, detail)


def upstream_unavailable(message: str, detail: Any = None, timeout: bool = False) -> RegistryError:
    """An upstream registry failed or timed out: 502, or 504 for a time-out."""
    return RegistryError("UNAVAILABLE", message, detail, status=504 if timeout else 502)
