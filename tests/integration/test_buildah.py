"""Building on top of a wrapped image: a Containerfile `FROM` the gateway, built by buildah.

A build pulls the composed image like any client, then runs its own `RUN` steps in it:
they see the wrapper's files and environment, they run the base's shell without going
through the wrapper's entrypoint, and the built image inherits the wrapped entrypoint.
buildah runs where only loopback exists and only the gateway's and S3's ports reach this
machine's.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from harness.buildah import Buildah, top_layer_file
from harness.images import WRAPPER_SCRIPT
from harness.tools import require

pytestmark = pytest.mark.integration

WRAPPER_GREETING = "wrapper-says-hello"  # what /wrapper/run.sh prints whenever it runs
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RUN_STEPS = (
    "RUN cat /wrapper/run.sh > /seen && test -x /wrapper/run.sh\n"
    'RUN echo "run-step wrapper-var=$WRAPPER_VAR path=$PATH"\n'
    "RUN /wrapper/run.sh echo through-the-wrapper > /ran\n"
)
SEEN_IN_RUN_STEPS = f"run-step wrapper-var=1 path={BASE_PATH}"  # wrapper's Env, base's PATH


@pytest.fixture
def buildah(tmp_path: Path) -> Buildah:
    require("buildah")
    require("unshare")
    return Buildah(tmp_path / "buildah")


@pytest.fixture
def s3_port(moto_s3) -> int:
    """S3's port: every blob of a wrapped image is a redirect to the bucket (the layers of
    an upstream that serves bytes itself are copied there), so a build needs only it and
    the gateway's."""
    return urlsplit(moto_s3.endpoint_url).port


def mounts() -> list[str]:
    """Mount points of this process's mount namespace (the one a leaked mount would stay in)."""
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]


def containerfile(directory: Path, text: str) -> Path:
    directory.mkdir()
    (directory / "Containerfile").write_text(text)
    return directory


def test_buildah_builds_from_a_wrap_path_and_keeps_the_wrapped_entrypoint(
    gateway, pushed_images, buildah, s3_port, tmp_path
):
    """RUN steps read the wrapper's files, see its Env and the base's PATH, and go through the
    wrapper only when they call it; the built image keeps [wrapper script, base entrypoint]
    unless the build sets its own ENTRYPOINT."""
    gw = gateway()
    base, wrapper = pushed_images["base-entrypoint"], pushed_images["wrapper"]
    wrapped = f"{gw.host}/wrap/local/{base.path}/with/local/{wrapper.path}:latest"
    before = mounts()

    built = buildah.bud(
        containerfile(tmp_path / "uses", f"FROM {wrapped}\n{RUN_STEPS}"),
        "localhost/built:1",
        [gw.port, s3_port],
    )
    assert SEEN_IN_RUN_STEPS in built.stdout.splitlines()
    assert WRAPPER_GREETING not in built.stdout + built.stderr  # no entrypoint in RUN steps
    config = buildah.inspect_image("localhost/built:1")["OCIv1"]["config"]
    assert config["Entrypoint"] == ["/wrapper/run.sh", "/bin/echo", "base-entrypoint"]
    layout = buildah.push_oci("localhost/built:1", tmp_path / "built-layout")
    assert top_layer_file(layout, "/seen").decode() == WRAPPER_SCRIPT
    ran = top_layer_file(layout, "/ran").decode()
    assert ran.splitlines() == [WRAPPER_GREETING, "through-the-wrapper"]

    buildah.bud(
        containerfile(tmp_path / "own", f'FROM {wrapped}\nENTRYPOINT ["/bin/echo", "own"]\n'),
        "localhost/own:1",
        [gw.port, s3_port],
    )
    own = buildah.inspect_image("localhost/own:1")["OCIv1"]["config"]
    assert own["Entrypoint"] == ["/bin/echo", "own"]
    assert mounts() == before


def test_buildah_builds_from_a_container_token_reference(
    gateway, pushed_images, buildah, s3_port, tmp_path
):
    """`targetImage` of a container token works as a `FROM` like a wrap path does."""
    gw = gateway()
    base, wrapper = pushed_images["base"], pushed_images["wrapper"]
    created = requests.post(
        f"{gw.url}/v1alpha/tokens",
        json={"image": f"local/{base.ref}", "wrappers": [f"local/{wrapper.ref}"]},
        timeout=60,
    )
    assert created.status_code == 201, created.text
    target = created.json()["targetImage"]
    assert target.startswith(f"{gw.host}/wt/")

    built = buildah.bud(
        containerfile(tmp_path / "uses", f"FROM {target}\n{RUN_STEPS}"),
        "localhost/built:1",
        [gw.port, s3_port],
    )
    assert SEEN_IN_RUN_STEPS in built.stdout.splitlines()
    config = buildah.inspect_image("localhost/built:1")["OCIv1"]["config"]
    assert config["Entrypoint"] == ["/wrapper/run.sh"]
    assert config["Cmd"] == ["sh", "-c", "echo base-cmd"]
    layout = buildah.push_oci("localhost/built:1", tmp_path / "built-layout")
    assert top_layer_file(layout, "/seen").decode() == WRAPPER_SCRIPT
