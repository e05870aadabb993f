"""OCI distribution-spec errors: a code, a message for people, an HTTP status.

Every failure a client can see is a `RegistryError`. The library only raises
them; the handler renders them as `{"errors": [{"code", "message", "detail"}]}`.
The factories below are the one place each kind of error is worded, so the same
failure reads the same wherever it happens.
"""

from __future__ import annotations

from typing import Any

STATUS_BY_CODE: dict[str, int] = {
    "BLOB_UNKNOWN": 404,
    "MANIFEST_UNKNOWN": 404,
    "NAME_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "DIGEST_INVALID": 400,
    "MANIFEST_INVALID": 400,
    "PAGINATION_NUMBER_INVALID": 400,
    "SIZE_INVALID": 400,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "UNSUPPORTED": 405,
    "TOOMANYREQUESTS": 429,
    "UNAVAILABLE": 502,
}


class RegistryError(Exception):
    """An error with a distribution-spec code, a human message and an HTTP status.

    `headers` are response headers the client needs to act on the error, e.g. an
    upstream's `Retry-After` on a 429.
    """

    def __init__(
        self,
        code: str,
        message: str,
        detail: Any = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
        self.status = status if status is not None else STATUS_BY_CODE.get(code, 400)
        self.headers = dict(headers or {})

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


def pagination_invalid(message: str, detail: Any = None) -> RegistryError:
    return RegistryError("PAGINATION_NUMBER_INVALID", message, detail)


def unsupported(message: str, detail: Any = None) -> RegistryError:
    return RegistryError("UNSUPPORTED", message, detail)


def denied(message: str, detail: Any = None) -> RegistryError:
    return RegistryError("DENIED", message, detail)


def too_many_requests(message: str, retry_after: str | None = None) -> RegistryError:
    headers = {"Retry-After": retry_after} if retry_after else None
    return RegistryError("TOOMANYREQUESTS", message, headers=headers)


def upstream_unavailable(message: str, detail: Any = None, timeout: bool = False) -> RegistryError:
    """An upstream registry failed or timed out: 502, or 504 for a time-out."""
    return RegistryError("UNAVAILABLE", message, detail, status=504 if timeout else 502)


def blob_mismatch(digest: str, actual: str) -> RegistryError:
    """An upstream's bytes for `digest` hash to something else."""
    return upstream_unavailable(
        f"blob {digest} from upstream has digest {actual}", detail={"digest": digest}
    )


def storage_unavailable(
    message: str = "artifact storage (S3) is unavailable; try again",
) -> RegistryError:
    """S3 failed: retryable for the client, and never blamed on an upstream."""
    return RegistryError("UNAVAILABLE", message, status=503)


def deadline_exceeded(what: str, budget: float) -> RegistryError:
    """The request's deadline ran out while waiting for `what`: 504, before the gateway's cut."""
    return RegistryError(
        "UNAVAILABLE",
        f"the request's deadline ({budget:.0f} s) ran out while waiting for {what}",
        status=504,
    )
