"""Session fixtures: real upstream registries, moto S3, test images, clients, the gateway.

Everything listens on 127.0.0.1 on ports picked at run time and lives in pytest's tmp
dirs; every process started here is stopped in the fixture's teardown.

Upstreams (all `docker-registry` 2.8) and the gateway alias each one gets:

* `upstream`             alias `local`: plain, serves blob bytes itself.
* `token_upstream`       alias `tok`:   Bearer token auth (`token_issuer`), serves bytes.
* `redirecting_upstream` alias `redir`: S3 storage on moto (bucket `upstream-redirect-blobs`,
                                        not the gateway's), blob GETs answer 307.

Images (`harness.images.CATALOG`; key: repository:tag - content). `pushed_images`,
`token_images` and `redirecting_images` push the same catalog to their upstream and map
each key to a `harness.images.Pushed` (repo, tag, digest, the artifact it was built from):

* `base`             library/busybox:1                 busybox, Cmd [sh -c "echo base-cmd"],
                                                       no Entrypoint, OCI manifest
* `base-v2s2`        library/busybox:1-docker          the same image, Docker schema 2
* `base-multi`       library/busybox:multi             OCI index: linux/amd64, linux/arm64/v8,
                                                       unknown/unknown attestation
* `base-entrypoint`  library/busybox-entrypoint:1      Entrypoint [/bin/echo base-entrypoint]
* `wrapper`          tools/wrapper:1                   /wrapper/run.sh (prints
                                                       wrapper-says-hello, exec "$@"), label
                                                       org.goci.wrapper=/wrapper/run.sh
* `wrapper-v2s2`     tools/wrapper:1-docker            the same wrapper, Docker schema 2
* `wrapper-2layers`  tools/wrapper:2layers             plus /wrapper/extra.txt in a 2nd layer
* `wrapper-multi`    tools/wrapper:multi               index: amd64 + arm64/v8 2-layer wrappers
* `wrapper-nolabel`  tools/wrapper-nolabel:1           no org.goci.wrapper label
* `wrapper-nolayers` tools/wrapper-nolayers:1          label but zero layers

Wrapper configs carry `Env: [WRAPPER_VAR=1, PATH=/wrapper:/usr/bin]`; the bases carry
`PATH=<standard>` and `BASE_VAR=base`. A wrap path for the gateway spells the tag as the
last component: `/v2/wrap/local/library/busybox/1/with/local/tools/wrapper/1/manifests/x`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from harness.browser import CALL_FAILED
from harness.clients import Containerd, Podman
from harness.cosign import PushedSignatures, generate_key
from harness.gateway import GatewayFactory, LocalGateway
from harness.images import Artifact, Pushed, push_catalog, standard_images, write_oci_layout
from harness.moto_s3 import MotoS3
from harness.registry import DockerRegistry
from harness.tokens import TokenIssuer
from harness.tools import require


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Note on the test item whether its call failed, for fixtures' teardown (the page's
    browser keeps screenshots of a failure)."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed


REDIRECT_BUCKET = "upstream-redirect-blobs"


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    """moto's S3 server (its own process; see harness.moto_s3 for why not a thread)."""
    server = MotoS3(tmp_path_factory.mktemp("moto-s3")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def token_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenIssuer]:
    """The Bearer token issuer `token_upstream` trusts; counts `/token` requests."""
    issuer = TokenIssuer(tmp_path_factory.mktemp("token-issuer")).start()
    yield issuer
    issuer.stop()


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerRegistry]:
    """Plain registry: filesystem storage, serves blob bytes itself, no auth."""
    require("docker-registry")
    registry = DockerRegistry(tmp_path_factory.mktemp("upstream-plain"), "plain").start()
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def token_upstream(
    tmp_path_factory: pytest.TempPathFactory, token_issuer: TokenIssuer
) -> Iterator[DockerRegistry]:
    """Registry that wants a Bearer token from `token_issuer` for every request."""
    require("docker-registry")
    registry = DockerRegistry(
        tmp_path_factory.mktemp("upstream-token"), "token", token_issuer=token_issuer
    ).start()
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def redirecting_upstream(
    tmp_path_factory: pytest.TempPathFactory, moto_s3: MotoS3
) -> Iterator[DockerRegistry]:
    """Registry on S3 storage (moto): blob GETs answer 307 to a presigned moto URL."""
    require("docker-registry")
    bucket = moto_s3.create_bucket(REDIRECT_BUCKET)
    registry = DockerRegistry(
        tmp_path_factory.mktemp("upstream-redirecting"),
        "redirecting",
        s3_endpoint_url=moto_s3.endpoint_url,
        s3_bucket=bucket,
    ).start()
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def image_artifacts() -> dict[str, Artifact]:
    """The ready-made test images, keyed by their ref in `image_layout`."""
    return standard_images()


@pytest.fixture(scope="session")
def image_layout(
    tmp_path_factory: pytest.TempPathFactory, image_artifacts: dict[str, Artifact]
) -> Path:
    """An OCI layout holding every ready-made image (refs as in `standard_images()`)."""
    return write_oci_layout(tmp_path_factory.mktemp("images") / "layout", image_artifacts)


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A P-256 key file for SIGNING_KEY_FILE, and its public key (PEM)."""
    private, public = generate_key()
    path = tmp_path_factory.mktemp("signing") / "signing.pem"
    path.write_bytes(private)
    return path, public


@pytest.fixture(scope="session")
def pushed_images(
    upstream: DockerRegistry, image_layout: Path, image_artifacts: dict[str, Artifact]
) -> dict[str, Pushed]:
    """The catalog (see module docstring) pushed to the plain `upstream`."""
    return push_catalog(image_layout, upstream.host, image_artifacts)


@pytest.fixture(scope="session")
def token_images(
    token_upstream: DockerRegistry, image_layout: Path, image_artifacts: dict[str, Artifact]
) -> dict[str, Pushed]:
    """The catalog pushed to `token_upstream` (skopeo does the token dance itself)."""
    return push_catalog(image_layout, token_upstream.host, image_artifacts)


@pytest.fixture(scope="session")
def redirecting_images(
    redirecting_upstream: DockerRegistry,
    image_layout: Path,
    image_artifacts: dict[str, Artifact],
) -> dict[str, Pushed]:
    """The catalog pushed to `redirecting_upstream` (its blobs land in moto S3)."""
    return push_catalog(image_layout, redirecting_upstream.host, image_artifacts)


@pytest.fixture(scope="session")
def upstream_aliases(
    upstream: DockerRegistry,
    token_upstream: DockerRegistry,
    redirecting_upstream: DockerRegistry,
) -> dict[str, str]:
    """`REGISTRY_ALIASES` entries naming the three upstreams: local, tok, redir."""
    return {"local": upstream.url, "tok": token_upstream.url, "redir": redirecting_upstream.url}


_bucket_numbers = itertools.count(1)


def _new_gateway(
    workdir: Path,
    moto_s3: MotoS3,
    aliases: Mapping[str, str],
    bucket: str | None,
    env: Mapping[str, str] | None,
    port: int | None = None,
) -> LocalGateway:
    if bucket is None:
        bucket = f"ociwrap-artifacts-{next(_bucket_numbers):03d}"
    if bucket not in {b["Name"] for b in moto_s3.client().list_buckets()["Buckets"]}:
        moto_s3.create_bucket(bucket)
    return LocalGateway(
        workdir,
        s3_endpoint_url=moto_s3.endpoint_url,
        bucket=bucket,
        aliases=aliases,
        extra_env=env,
        port=port,
    )


@pytest.fixture
def gateway(
    tmp_path: Path, moto_s3: MotoS3, upstream_aliases: dict[str, str]
) -> Iterator[GatewayFactory]:
    """Factory: `gateway(bucket=None, aliases=None, env=None, port=None) -> LocalGateway`.

    Each call starts `python -m ociwrap_local` (loopback-only) on a free port, by default
    with a fresh artifact bucket (so no test sees another's cache; pass `bucket=` to share
    one between gateways) and the aliases local/tok/redir. All are stopped when the test
    ends, and the test fails if any request outlived API Gateway's 30 s or the gateway
    tried to connect anywhere but loopback.
    """
    started: list[LocalGateway] = []
    numbers = itertools.count(1)

    def start(
        *,
        bucket: str | None = None,
        aliases: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
    ) -> LocalGateway:
        workdir = tmp_path / f"gateway-{next(numbers)}"
        workdir.mkdir()
        gw = _new_gateway(workdir, moto_s3, aliases or upstream_aliases, bucket, env, port)
        started.append(gw)
        return gw.start()

    yield start
    for gw in started:
        gw.stop()
    for gw in started:
        check_stopped_gateway(gw)


@pytest.fixture(scope="session")
def shared_gateway(
    tmp_path_factory: pytest.TempPathFactory, moto_s3: MotoS3, upstream_aliases: dict[str, str]
) -> Iterator[LocalGateway]:
    """One gateway for the whole session (its cache is shared: don't count requests on it)."""
    gw = _new_gateway(
        tmp_path_factory.mktemp("shared-gateway"), moto_s3, upstream_aliases, None, None
    ).start()
    yield gw
    gw.stop()
    check_stopped_gateway(gw)


def check_stopped_gateway(gw: LocalGateway) -> None:
    """Fail the test if the gateway did what no gateway may (see `LocalGateway.misdeeds`)."""
    misdeeds = gw.misdeeds()
    if misdeeds:
        pytest.fail(
            f"the gateway at {gw.url} failed as AWS would not let it:\n" + "\n".join(misdeeds)
        )


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[Podman]:
    """podman with fresh private storage (so every pull really goes to the registry)."""
    require("podman")
    require("runc")
    with Podman(tmp_path / "podman") as client:
        yield client


@pytest.fixture
def containerd(tmp_path: Path) -> Iterator[Containerd]:
    """A fresh containerd (own root/state/socket, CRI off) for `ctr` pulls."""
    require("containerd")
    require("ctr")
    daemon = Containerd(tmp_path / "containerd").start()
    yield daemon
    daemon.stop()


from harness.hostile import HostileRegistry  # noqa: E402


@pytest.fixture(scope="session")
def hostile() -> Iterator[HostileRegistry]:
    """A misbehaving upstream in this process (see harness.hostile), on 127.0.0.1.

    Reach it through the alias `evil`:
    `gateway(aliases={**upstream_aliases, "evil": hostile.url})`; the first path component
    picks the scenario (`evil/huge-manifest/app:1`, `evil/good/wrapper:1`).
    """
    registry = HostileRegistry().start()
    yield registry
    registry.stop()


@pytest.fixture
def sigs(tmp_path: Path) -> Iterator[PushedSignatures]:
    """Pushes cosign `.sig` tags to upstreams for one test and deletes them afterwards."""
    signatures = PushedSignatures(tmp_path)
    yield signatures
    signatures.delete_all()
