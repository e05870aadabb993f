"""`sam build` as deployed and as this machine can run it.

* `deploy`: template.yaml as it is (arm64) into `.aws-sam/build`, where `sam deploy`
  looks for it.
* `host`: a derived template that sets this machine's architecture on the function and
  the layer (SAM has no switch for it), built into `.aws-sam/host`: arm64 wheels
  (bcrypt, cryptography) cannot be imported on x86_64, so what runs here (the tests,
  `sam local start-api`) needs a build of its own. Everything else is the same.
* `runtime`: what the Lambda Python 3.12 runtime brings besides the standard library,
  for the host build to run against: boto3 (the runtime's only third-party package), and
  awslambdaric, the runtime interface client that talks to the Lambda Runtime API.

Both builds need a Python 3.12 (the runtime's version; SAM's Python builder runs it and
the layer's Makefile installs with it): on PATH, else the newest 3.12 pyenv has.
`python -m ociwrap_local.sam [deploy|host|runtime|all]` (`make sam-build`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
OUTPUT = ROOT / ".aws-sam"
#: Build directories: `sam deploy` reads `.aws-sam/build`; the others are for this machine.
DEPLOY_BUILD = OUTPUT / "build"
HOST_BUILD = OUTPUT / "host"
RUNTIME = OUTPUT / "runtime"
#: What the runtime brings (see the module docstring), installed for the host.
RUNTIME_PACKAGES = ("boto3", "awslambdaric")
#: Lambda's names for machine architectures.
ARCHITECTURES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


class BuildError(RuntimeError):
    """A build step failed or a prerequisite (Python 3.12) is missing."""


def host_architecture() -> str:
    """This machine's architecture as Lambda names it (x86_64 or arm64)."""
    machine = platform.machine().lower()
    if machine not in ARCHITECTURES:
        raise BuildError(f"Lambda has no {machine} architecture")
    return ARCHITECTURES[machine]


def _pyenv_312() -> list[Path]:
    """Python 3.12 installations pyenv knows, newest last."""
    found: list[Path] = []
    pyenv = shutil.which("pyenv")
    if pyenv:
        result = subprocess.run(
            [pyenv, "prefix", "3.12"], capture_output=True, text=True, check=False
        )
        if result.returncode == 0:
            found.append(Path(result.stdout.strip().splitlines()[-1]) / "bin" / "python3.12")
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    versions = sorted(
        (root / "versions").glob("3.12*"),
        key=lambda path: tuple(int(p) for p in path.name.split(".") if p.isdigit()),
    )
    found += [version / "bin" / "python3.12" for version in versions]
    return found


def _is_python312(candidate: Path) -> bool:
    """Whether `candidate` runs and is a 3.12 (a pyenv shim may exist and refuse to run)."""
    if not (candidate.is_file() and os.access(candidate, os.X_OK)):
        return False
    probe = [str(candidate), "-c", "import sys; print(sys.version_info[:2] == (3, 12))"]
    result = subprocess.run(probe, capture_output=True, text=True, check=False, timeout=30)
    return result.returncode == 0 and result.stdout.strip() == "True"


def find_python312() -> Path | None:
    """A Python 3.12 interpreter: `python3.12` on PATH, else pyenv's; None when there is none."""
    on_path = shutil.which("python3.12")
    candidates = ([Path(on_path)] if on_path else []) + list(reversed(_pyenv_312()))
    return next((candidate for candidate in candidates if _is_python312(candidate)), None)


def require_python312() -> Path:
    python = find_python312()
    if python is None:
        raise BuildError(
            "no Python 3.12 found (python3.12 on PATH or under pyenv): `sam build` needs the "
            "runtime's version, e.g. `pyenv install 3.12`"
        )
    return python


def derived_template(architecture: str, destination: Path) -> Path:
    """template.yaml with `architecture` on the function and the layer, as JSON (the
    intrinsics in their long form, paths absolute) in `destination`."""
    from samtranslator.yaml_helper import yaml_parse  # SAM's reading of short-form tags

    template = yaml_parse(TEMPLATE.read_text(encoding="utf-8"))
    template["Globals"]["Function"]["Architectures"] = [architecture]
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Metadata"]["BuildArchitecture"] = architecture
            properties["CompatibleArchitectures"] = [architecture]
            properties["ContentUri"] = str(ROOT / properties["ContentUri"])
        elif resource["Type"] == "AWS::Serverless::Function":
            properties["CodeUri"] = str(ROOT / properties["CodeUri"])
    destination.mkdir(parents=True, exist_ok=True)
    path = destination / f"template.{architecture}.json"
    path.write_text(json.dumps(template, indent=1), encoding="utf-8")
    return path


def _sam() -> str:
    beside = Path(sys.executable).parent / "sam"
    return str(beside) if beside.exists() else shutil.which("sam") or "sam"


def sam_build(template: Path, build_dir: Path, architecture: str) -> Path:
    """`sam build` of `template` into `build_dir`; returns the built template's path."""
    python = require_python312()
    env = dict(os.environ)
    env.update(
        PATH=f"{python.parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHON=str(python),
        LAYER_ARCHITECTURE=architecture,
        SAM_CLI_TELEMETRY="0",
        AWS_DEFAULT_REGION=env.get("AWS_DEFAULT_REGION", "us-east-1"),
    )
    # Not from SAM's cache: it keys on the sources, not on LAYER_ARCHITECTURE.
    argv = [_sam(), "build", "--no-cached", "--template-file", str(template)]
    argv += ["--build-dir", str(build_dir)]
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(
            f"{' '.join(argv)} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return build_dir / "template.yaml"


def build_deploy() -> Path:
    """The artefact `sam deploy` ships: template.yaml as it is."""
    return sam_build(TEMPLATE, DEPLOY_BUILD, "arm64")


def build_host() -> Path:
    """The same, for this machine's architecture."""
    architecture = host_architecture()
    template = derived_template(architecture, OUTPUT)
    return sam_build(template, HOST_BUILD, architecture)


def install_runtime(destination: Path = RUNTIME) -> Path:
    """boto3 and awslambdaric for Python 3.12 on this machine, in `destination`/python."""
    python = require_python312()
    target = destination / "python"
    if target.exists():
        shutil.rmtree(target)
    argv = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    argv += ["--no-cache-dir", "--only-binary=:all:", "--target", str(target), *RUNTIME_PACKAGES]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"{' '.join(argv)} failed:\n{result.stderr[-3000:]}")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ociwrap_local.sam", description=__doc__)
    parser.add_argument(
        "what", choices=["deploy", "host", "runtime", "all"], nargs="?", default="all"
    )
    what = parser.parse_args(argv).what
    try:
        if what in ("deploy", "all"):
            print(f"built {build_deploy()}")
        if what in ("host", "all"):
            print(f"built {build_host()}")
        if what in ("runtime", "all"):
            print(f"installed {install_runtime()}")
    except BuildError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
