"""`make sam-build`'s own pieces (dev/ociwrap_local/sam.py): Python 3.12, the host template."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from harness import cfn
from ociwrap_local import sam

ROOT = Path(__file__).resolve().parents[2]


def _script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_pyenv_shim_that_cannot_run_is_passed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyenv puts a `python3.12` shim on PATH that fails when 3.12 is not the selected
    version: it must not be taken for the interpreter."""
    shims = tmp_path / "shims"
    _script(shims / "python3.12", "echo 'pyenv: python3.12: command not found' >&2; exit 127")
    installed = _script(
        tmp_path / "pyenv" / "versions" / "3.12.7" / "bin" / "python3.12", "echo True"
    )
    _script(tmp_path / "pyenv" / "versions" / "3.12.10" / "bin" / "python3.12", "exit 1")
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}/usr/bin:/bin")
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    assert sam.find_python312() == installed


def test_no_python312_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "nothing"))
    assert sam.find_python312() is None
    with pytest.raises(sam.BuildError, match=r"Python 3\.12"):
        sam.require_python312()


def _without_architecture(template: dict[str, Any]) -> dict[str, Any]:
    copy = json.loads(json.dumps(template))
    copy["Globals"]["Function"].pop("Architectures")
    for resource in copy["Resources"].values():
        resource.get("Metadata", {}).pop("BuildArchitecture", None)
        properties = resource.get("Properties", {})
        properties.pop("CompatibleArchitectures", None)
        for key in ("CodeUri", "ContentUri"):
            if key in properties:
                properties[key] = Path(properties[key]).name
    return copy


@pytest.mark.parametrize("architecture", ["x86_64", "arm64"])
def test_the_host_template_differs_only_in_architecture(architecture: str, tmp_path: Path) -> None:
    derived = json.loads(sam.derived_template(architecture, tmp_path).read_text())
    assert derived["Globals"]["Function"]["Architectures"] == [architecture]
    layer = derived["Resources"]["OciwrapLayer"]
    assert layer["Metadata"]["BuildArchitecture"] == architecture
    assert layer["Properties"]["CompatibleArchitectures"] == [architecture]
    for key, resource in (
        ("ContentUri", layer),
        ("CodeUri", derived["Resources"]["RegistryFunction"]),
    ):
        path = Path(resource["Properties"][key])
        assert path.is_absolute() and path.is_dir()  # the template no longer sits beside them
    original = cfn.load(ROOT / "template.yaml")
    assert _without_architecture(derived) == _without_architecture(original)


def test_the_host_architecture_is_lambdas_name_for_this_machine() -> None:
    assert sam.host_architecture() in {"x86_64", "arm64"}
