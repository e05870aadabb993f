"""Decide what a missing command-line tool means for a test.

On a developer's machine a missing `skopeo` or `podman` should not turn the whole suite
red, so the test is skipped with the install hint. In CI (`CI=true`) the tools are part
of the contract: a skip there would hide a broken setup, so it fails instead.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

# Debian package that provides each tool the harness uses (see shared TESTING.md).
PACKAGES = {
    "docker-registry": "docker-registry",
    "skopeo": "skopeo",
    "podman": "podman",
    "buildah": "buildah",
    "umoci": "umoci",
    "busybox": "busybox-static",
    "runc": "runc",
    "containerd": "containerd",
    "ctr": "containerd",
    "unshare": "util-linux",
    "mount": "mount",
    "ip": "iproute2",
    "ldd": "libc-bin",
}


def in_ci() -> bool:
    """True when running under CI, where missing tools are errors rather than skips."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require(tool: str) -> str:
    """Return the absolute path of `tool`; skip the test if absent (fail under CI)."""
    path = shutil.which(tool)
    if path is not None:
        return path
    package = PACKAGES.get(tool, tool)
    message = f"{tool} not found on PATH (apt-get install -y {package})"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def beside_python(tool: str) -> str | None:
    """The `tool` installed with the dev requirements (next to this interpreter), if there."""
    beside = Path(sys.executable).parent / tool
    return str(beside) if beside.exists() and os.access(beside, os.X_OK) else None


def require_python_tool(tool: str) -> str:
    """A command installed from PyPI (`cfn-lint`, `sam`): the venv's first, then PATH's;
    skip the test if absent (fail under CI)."""
    return beside_python(tool) or require(tool)


def require_path(path: Path, made_by: str) -> Path:
    """Return `path`; skip the test if it does not exist (fail under CI), naming what makes it."""
    if path.exists():
        return path
    message = f"{path} does not exist (made by `{made_by}`)"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
