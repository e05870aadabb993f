"""What `sam build` makes is what is tested: the deployed artefact and its host twin.

`make sam-build` (a step of `make test`, with the Python 3.12 of the Lambda runtime)
builds template.yaml into `.aws-sam/build` (arm64, what `sam deploy` ships), the same
for this machine's architecture into `.aws-sam/host`, and installs the runtime's own
packages (boto3, awslambdaric) into `.aws-sam/runtime`. These tests read the layer as
built and run the built handler under Python 3.12 with nothing but the function, the
layer and the runtime on its path, with every sample event of `events/`.
"""

from __future__ import annotations

import csv
import json
import re
import struct
import subprocess
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from harness.moto_s3 import MotoS3, dummy_aws_env
from harness.tools import require_path
from ociwrap_local import sam

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EVENTS = sorted((ROOT / "events").glob("*.json"))
#: ELF e_machine of each Lambda architecture.
ELF_MACHINES = {"arm64": 183, "x86_64": 62}
#: The runtime's packages: a copy in the layer would come first on sys.path and shadow them.
RUNTIME_PACKAGES = {"boto3", "botocore", "s3transfer"}
BUCKET = "ociwrap-events"


def _layer(build: Path) -> Path:
    return require_path(build / "OciwrapLayer" / "python", "make sam-build")


def _elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not an ELF file"
    return struct.unpack("<H", header[18:20])[0]


def _owners(layer: Path) -> dict[str, str]:
    """Installed file (relative to the layer) -> the distribution that installed it."""
    owners: dict[str, str] = {}
    for record in layer.glob("*.dist-info/RECORD"):
        metadata = (record.parent / "METADATA").read_text(encoding="utf-8")
        name = re.search(r"^Name: (.+)$", metadata, re.MULTILINE)
        assert name, record
        with record.open(newline="", encoding="utf-8") as handle:
            for row in csv.reader(handle):
                owners[row[0]] = name.group(1).strip().lower()
    return owners


def _compiled(layer: Path) -> dict[str, set[int]]:
    """Distribution -> the ELF machines of its extension modules."""
    owners = _owners(layer)
    compiled: dict[str, set[int]] = {}
    for library in layer.rglob("*.so*"):
        relative = library.relative_to(layer).as_posix()
        owner = owners.get(relative, f"(not installed by a distribution: {relative})")
        compiled.setdefault(owner, set()).add(_elf_machine(library))
    return compiled


def _zipped_size(directory: Path) -> int:
    """The layer as `sam deploy` uploads it: its directory zipped (deflate)."""
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())
    return len(buffer.getvalue())


def _readme_layer_table() -> dict[str, str]:
    """The README's table of what the built layer is ("| what | measured |")."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### The layer as built", 1)
    assert len(section) == 2, "README has no '### The layer as built' section"
    rows: dict[str, str] = {}
    for line in section[1].split("\n###", 1)[0].splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 2 and not set(cells[0]) <= set("- "):
            rows[cells[0]] = cells[1]
    return rows


def _megabytes(cell: str) -> float:
    match = re.fullmatch(r"about ([0-9.]+) MB", cell)
    assert match, f"README states {cell!r}, not 'about N MB'"
    return float(match.group(1))


# -- the deployed artefact -----------------------------------------------------------


def test_the_deployed_build_is_for_arm64_lambda() -> None:
    built = require_path(sam.DEPLOY_BUILD / "template.yaml", "make sam-build").read_text()
    assert "arm64" in built and "x86_64" not in built
    compiled = _compiled(_layer(sam.DEPLOY_BUILD))
    assert compiled, "no compiled modules in the layer: were its requirements installed?"
    for distribution, machines in compiled.items():
        assert machines == {ELF_MACHINES["arm64"]}, f"{distribution} is not built for arm64"


@pytest.mark.parametrize("build", [sam.DEPLOY_BUILD, sam.HOST_BUILD], ids=["deploy", "host"])
def test_the_page_ships_the_manual_as_a_file(build: Path) -> None:
    """The page's `/README.md` is a link in the source tree; the build copies its bytes."""
    manual = require_path(build / "RegistryFunction" / "page" / "README.md", "make sam-build")
    assert not manual.is_symlink()
    assert manual.read_bytes() == (ROOT / "README.md").read_bytes()


@pytest.mark.parametrize("build", [sam.DEPLOY_BUILD, sam.HOST_BUILD], ids=["deploy", "host"])
def test_the_layer_leaves_boto3_and_botocore_to_the_runtime(build: Path) -> None:
    layer = _layer(build)
    shipped = {path.name.split("-")[0].lower() for path in layer.iterdir()}
    assert not shipped & RUNTIME_PACKAGES, (
        f"the layer shadows the runtime's {shipped & RUNTIME_PACKAGES}"
    )
    assert {"ociwrap", "aws_xray_sdk", "aws_lambda_powertools", "wrapt"} <= shipped


def test_the_readme_says_what_the_layer_is() -> None:
    """Size and compiled dependencies as measured here, not as once believed."""
    layer = _layer(sam.DEPLOY_BUILD)
    table = _readme_layer_table()
    unzipped = sum(path.stat().st_size for path in layer.rglob("*") if path.is_file()) / 1e6
    zipped = _zipped_size(layer.parent) / 1e6
    for what, measured in (("unzipped", unzipped), ("zipped", zipped)):
        stated = _megabytes(table[f"layer, {what}"])
        assert abs(measured - stated) <= max(1.0, 0.1 * stated), (
            f"the layer is {measured:.1f} MB {what}; README says {stated} MB"
        )
    compiled = sorted(_compiled(layer))
    stated_compiled = sorted(name.strip() for name in table["compiled, arm64 wheels"].split(","))
    assert stated_compiled == compiled
    assert table["left to the runtime"] == "boto3, botocore, s3transfer"


# -- the host build, run as Lambda runs it ----------------------------------------------


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every sample event through the built handler under Python 3.12, one warm instance."""
    python = sam.find_python312()
    if python is None:
        require_path(Path("python3.12"), "pyenv install 3.12")
    layer = _layer(sam.HOST_BUILD)
    runtime = require_path(sam.RUNTIME / "python", "make sam-build")
    workdir = tmp_path_factory.mktemp("lambda-events")
    s3 = MotoS3(workdir).start()
    try:
        s3.create_bucket(BUCKET)
        out = workdir / "answers.jsonl"
        env = {**dummy_aws_env(s3.endpoint_url), "ARTIFACT_BUCKET": BUCKET, "LANG": "C.UTF-8"}
        argv = [str(python), "-S", str(ROOT / "tests" / "harness" / "lambda_invoke.py"), str(out)]
        argv += [str(sam.HOST_BUILD / "RegistryFunction"), str(layer), str(runtime)]
        argv += [str(event) for event in EVENTS]
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    finally:
        s3.stop()
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    answered = {line["event"]: line for line in lines if "event" in line}
    return {"events": answered, "origins": lines[-1]["origins"]}


def test_modules_come_from_where_lambda_has_them(answers: dict[str, Any]) -> None:
    origins = answers["origins"]
    assert origins["app"] == "function"
    for name in ("ociwrap", "aws_lambda_powertools", "requests", "cryptography", "bcrypt"):
        assert origins[name] == "layer", name
    assert origins["aws_xray_sdk.core"] == "layer"  # imports with the runtime's botocore
    for name in ("boto3", "botocore", "s3transfer"):
        assert origins[name] == "runtime", f"{name} from {origins[name]}"


def test_every_sample_event_gets_its_answer(answers: dict[str, Any]) -> None:
    events = answers["events"]
    assert set(events) == {path.name for path in EVENTS}
    ping = events["ping.json"]
    assert ping["statusCode"] == 200
    assert ping["headers"]["Docker-Distribution-API-Version"] == "registry/2.0"
    created = events["token-create.json"]
    assert created["statusCode"] == 201
    assert "/wt/" in json.loads(created["body"])["targetImage"]
    # The others name Docker Hub, which no test may reach: the spec's JSON error, never a 500.
    for name in ("manifest-get.json", "blob-get.json", "wrap-manifest-get.json"):
        answer = events[name]
        assert answer["statusCode"] == 502, name
        [error] = json.loads(answer["body"])["errors"]
        assert error["code"] == "UNAVAILABLE"
        assert "docker.io" in error["message"]
    head = events["manifest-head.json"]
    assert head["statusCode"] == 502 and head["body"] == ""
