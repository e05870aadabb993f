"""The SAM template lints clean with the real tools, run offline.

`cfn-lint` and `sam validate --lint` get dummy credentials and a fixed region. If either
tool is missing the test is skipped, except under CI, where a missing tool is a failure.
What the template deploys is checked from the YAML itself in `tests/unit/test_template.py`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness.tools import require_python_tool

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


def _offline_env() -> dict[str, str]:
    """This environment without AWS profiles, with dummy credentials: nothing reaches AWS."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN")
    }
    env.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        SAM_CLI_TELEMETRY="0",
        SAM_CLI_CONTACT_US_FORM_DISABLED="1",
    )
    return env


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=ROOT,
        env=_offline_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cfn_lint_is_clean() -> None:
    result = _run([require_python_tool("cfn-lint"), "--", str(TEMPLATE)])
    assert result.returncode == 0, f"cfn-lint:\n{result.stdout}\n{result.stderr}"


def test_sam_validate_lint_is_clean() -> None:
    sam = require_python_tool("sam")
    result = _run([sam, "validate", "--lint", "--template-file", str(TEMPLATE)])
    assert result.returncode == 0, f"sam validate --lint:\n{result.stdout}\n{result.stderr}"
