"""The handler's environment over the in-memory upstream: what `handler_on_stub` sets up
on the scripted one, with nothing listening anywhere."""

from __future__ import annotations

from typing import Any

from doubles.upstream import MemoryUpstream
from scripted_upstream import stub_environment, stub_paths

#: The alias `stub` points here; no request is ever sent to it.
STUB_URL = "http://stub.invalid"


def stub_images(upstream: MemoryUpstream) -> MemoryUpstream:
    """The one-layer images `team/base` and `team/wrapper` (label `/w/run`)."""
    upstream.serve_paths(stub_paths())
    return upstream


def handler_on_memory(monkeypatch: Any, upstream: MemoryUpstream) -> MemoryUpstream:
    """`stub_images` on `upstream`, in the `stub_environment` with the alias `stub` here.
    Install the service with the `on_doubles` fixture."""
    stub_images(upstream)
    stub_environment(monkeypatch, STUB_URL)
    return upstream
