"""The one registry service of a warm function instance.

Built on first use and kept: S3 client, upstream sessions and caches are reused by
every request the instance serves. Importing the handler stays cheap because the
library's heavier dependencies (boto3 among them) load here; under SnapStart it is
built before the snapshot (see `app`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ociwrap.registry.service import RegistryService

_lock = threading.Lock()
_service: RegistryService | None = None


def service() -> RegistryService:
    global _service
    with _lock:
        if _service is None:
            from ociwrap.registry.wiring import build_service

            _service = build_service()
        return _service


def reset_service() -> None:
    """Forget the service, so the next request reads the environment again."""
    global _service
    with _lock:
        _service = None
