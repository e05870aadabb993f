"""Private upstreams and access control, with real registries and real clients.

Two private upstreams (`docker-registry` behind htpasswd Basic auth, aliased `priv`, and
one behind Bearer tokens that are only given for a login, aliased `ptok`) hold a wrapper
image no public upstream has. Logins reach the gateway from a file and from (moto's)
Secrets Manager. Whatever is fetched with a login is served only under the name it came
from; no login, token or Authorization value ever shows up in an answer or a log line.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from harness.clients import ToolError, skopeo_copy
from harness.gateway import gateway_pythonpath
from harness.images import (
    AMD64,
    WRAPPER_LABEL,
    Image,
    Layer,
    file,
    push,
    push_catalog,
    write_oci_layout,
)
from harness.logins import docker_auths, htpasswd_line
from harness.moto_s3 import ACCESS_KEY, REGION, SECRET_KEY
from harness.procs import Process, clean_env, free_port
from harness.registry import DockerRegistry
from harness.tokens import TokenIssuer
from harness.tools import require

pytestmark = pytest.mark.integration

USER, PASSWORD = "puller", "Pa55-w0rd-only-upstreams-know"
PULLER, PULL_PASSWORD = "ci", "pull-Pa55-for-ociwrap"
PRIVATE_REPO = "team/private-wrapper"
ACCEPT = {
    "Accept": ",".join(
        [
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        ]
    )
}
#: Every answer the tests below get, for the last test to search for secrets.
ANSWERS: list[requests.Response] = []


def secrets(issuers: list[TokenIssuer]) -> list[str]:
    login = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    pull = base64.b64encode(f"{PULLER}:{PULL_PASSWORD}".encode()).decode()
    tokens = [token for issuer in issuers for token in issuer.issued]
    return [PASSWORD, login, PULL_PASSWORD, pull, *tokens]


def get(url: str, **kwargs: object) -> requests.Response:
    response = requests.get(url, headers=ACCEPT, timeout=60, allow_redirects=False, **kwargs)
    ANSWERS.append(response)
    return response


def private_wrapper() -> Image:
    """A wrapper only the private upstreams have (its own script, so its own digests)."""
    script = '#!/bin/sh\necho private-wrapper-says-hello\nexec "$@"\n'
    layer = Layer.from_entries([file("private/run.sh", script, 0o755)], "private wrapper")
    config = {
        "Env": ["PRIVATE_WRAPPER=1"],
        "Labels": {WRAPPER_LABEL: "/private/run.sh", "org.example.private": "yes"},
    }
    return Image([layer], config, dict(AMD64))


@pytest.fixture(scope="module")
def private_layout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Image]:
    image = private_wrapper()
    layout = write_oci_layout(tmp_path_factory.mktemp("private") / "layout", {"private": image})
    return layout, image


@pytest.fixture(scope="module")
def basic_upstream(
    tmp_path_factory: pytest.TempPathFactory, private_layout, image_layout, image_artifacts
) -> Iterator[DockerRegistry]:
    require("docker-registry")
    workdir = tmp_path_factory.mktemp("upstream-basic")
    htpasswd = workdir / "htpasswd"
    htpasswd.write_text(htpasswd_line(USER, PASSWORD) + "\n")
    registry = DockerRegistry(workdir, "basic", htpasswd=htpasswd).start()
    creds = f"{USER}:{PASSWORD}"
    push(private_layout[0], "private", f"{registry.host}/{PRIVATE_REPO}:1", creds=creds)
    push_catalog(image_layout, registry.host, image_artifacts, ["base"], creds=creds)
    yield registry
    registry.stop()


@pytest.fixture(scope="module")
def login_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenIssuer]:
    issuer = TokenIssuer(tmp_path_factory.mktemp("login-issuer"), logins={USER: PASSWORD})
    issuer.start()
    yield issuer
    issuer.stop()


@pytest.fixture(scope="module")
def token_login_upstream(
    tmp_path_factory: pytest.TempPathFactory, login_issuer, private_layout
) -> Iterator[DockerRegistry]:
    require("docker-registry")
    registry = DockerRegistry(
        tmp_path_factory.mktemp("upstream-token-login"), "token", token_issuer=login_issuer
    ).start()
    push(
        private_layout[0],
        "private",
        f"{registry.host}/{PRIVATE_REPO}:1",
        creds=f"{USER}:{PASSWORD}",
    )
    yield registry
    registry.stop()


@pytest.fixture(scope="module")
def aliases(upstream_aliases, basic_upstream, token_login_upstream) -> dict[str, str]:
    return {**upstream_aliases, "priv": basic_upstream.url, "ptok": token_login_upstream.url}


@pytest.fixture
def credentials_file(tmp_path) -> Path:
    path = tmp_path / "upstreams.json"
    path.write_text(docker_auths({"priv": (USER, PASSWORD), "ptok": (USER, PASSWORD)}))
    return path


@pytest.fixture
def private_gw(gateway, aliases, credentials_file):
    return gateway(aliases=aliases, env={"UPSTREAM_CREDENTIALS_FILE": str(credentials_file)})


def config_digest(image: Image) -> str:
    return "sha256:" + hashlib.sha256(image.config_bytes()).hexdigest()


def error_of(response: requests.Response) -> dict:
    return response.json()["errors"][0]


# -- pulls with logins --------------------------------------------------------------------


@pytest.mark.parametrize("alias", ["priv", "ptok"])
def test_proxied_pulls_with_logins_from_a_file(private_gw, private_layout, alias, tmp_path):
    layout = skopeo_copy(f"{private_gw.host}/{alias}/{PRIVATE_REPO}:1", tmp_path / "out")
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == private_layout[1].digest


def test_logins_from_secrets_manager(
    gateway, aliases, moto_s3, private_layout, pushed_images, tmp_path
):
    import boto3

    client = boto3.client(
        "secretsmanager",
        endpoint_url=moto_s3.endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    arn = client.create_secret(
        Name=f"ociwrap-upstreams-{tmp_path.name}",
        SecretString=docker_auths({"ptok": (USER, PASSWORD)}),
    )["ARN"]
    gw = gateway(
        aliases=aliases,
        env={
            "UPSTREAM_CREDENTIALS_SECRET": arn,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_s3.endpoint_url,
        },
    )
    response = get(f"{gw.url}/v2/ptok/{PRIVATE_REPO}/manifests/1")
    assert response.status_code == 200
    assert response.headers["Docker-Content-Digest"] == private_layout[1].digest
    wrap = f"wrap/local/{pushed_images['base'].path}/with/ptok/{PRIVATE_REPO}/1"
    composed = get(f"{gw.url}/v2/{wrap}/manifests/latest")
    assert composed.status_code == 200, composed.text
    assert composed.json()["layers"][-1]["digest"] == private_layout[1].layers[0].digest


def test_a_wrapped_image_with_a_private_wrapper_runs(private_gw, podman, pushed_images):
    ref = f"{private_gw.host}/wrap/local/{pushed_images['base'].path}/with/priv/{PRIVATE_REPO}/1"
    assert podman.run(f"{ref}:latest").splitlines() == ["private-wrapper-says-hello", "base-cmd"]


def test_make_run_reads_the_secret_from_its_embedded_moto(aliases, private_layout, tmp_path):
    """The local path is the Lambda path: UPSTREAM_CREDENTIALS_SECRET, served by the same
    moto server that is `make run`'s S3 (its port fixed by S3_PORT)."""
    import boto3

    port, s3_port = free_port(), free_port()
    env = clean_env(
        {
            "PORT": str(port),
            "S3_PORT": str(s3_port),
            "REGISTRY_ALIASES": ",".join(f"{k}={v}" for k, v in aliases.items()),
            "UPSTREAM_CREDENTIALS_SECRET": "ociwrap/upstreams",
            "GATEWAY_WORKERS": "1",
            "PYTHONPATH": gateway_pythonpath(),
            "PYTHONUNBUFFERED": "1",
        }
    )
    server = Process("ociwrap-local", [sys.executable, "-m", "ociwrap_local"], tmp_path, env=env)
    server.start()
    try:
        server.wait_http(f"http://127.0.0.1:{port}/v2/", 200, timeout=60)
        boto3.client(
            "secretsmanager",
            endpoint_url=f"http://127.0.0.1:{s3_port}",
            region_name=REGION,
            aws_access_key_id="ociwrap-local",
            aws_secret_access_key="ociwrap-local",
        ).create_secret(
            Name="ociwrap/upstreams", SecretString=docker_auths({"priv": (USER, PASSWORD)})
        )
        response = get(f"http://127.0.0.1:{port}/v2/priv/{PRIVATE_REPO}/manifests/1")
        assert response.status_code == 200, response.text
        assert response.headers["Docker-Content-Digest"] == private_layout[1].digest
    finally:
        server.stop()


# -- errors that say what to do -----------------------------------------------------------


def test_without_a_login_the_error_names_the_setting(gateway, aliases):
    gw = gateway(aliases=aliases)
    for alias in ("priv", "ptok"):
        response = get(f"{gw.url}/v2/{alias}/{PRIVATE_REPO}/manifests/1")
        assert response.status_code == 401, response.text
        error = error_of(response)
        assert error["code"] == "UNAUTHORIZED"
        assert alias in error["message"] and "UPSTREAM_CREDENTIALS_FILE" in error["message"]


def test_a_wrong_login_is_refused_naming_the_setting(gateway, aliases, tmp_path):
    path = tmp_path / "wrong.json"
    path.write_text(docker_auths({"priv": (USER, "wrong"), "ptok": (USER, "wrong")}))
    gw = gateway(aliases=aliases, env={"UPSTREAM_CREDENTIALS_FILE": str(path)})
    for alias in ("priv", "ptok"):
        response = get(f"{gw.url}/v2/{alias}/{PRIVATE_REPO}/manifests/1")
        assert response.status_code == 401
        assert "refused the login" in error_of(response)["message"]


def test_an_unreadable_credentials_file_is_a_503_naming_it(gateway, aliases, tmp_path):
    gw = gateway(aliases=aliases, env={"UPSTREAM_CREDENTIALS_FILE": str(tmp_path / "none")})
    response = get(f"{gw.url}/v2/priv/{PRIVATE_REPO}/manifests/1")
    assert response.status_code == 503
    assert "UPSTREAM_CREDENTIALS_FILE" in error_of(response)["message"]


# -- nothing private leaks ----------------------------------------------------------------


def test_private_content_is_not_served_under_other_names(private_gw, private_layout, pushed_images):
    image = private_layout[1]
    url = private_gw.url
    assert get(f"{url}/v2/priv/{PRIVATE_REPO}/manifests/1").status_code == 200
    assert get(f"{url}/v2/priv/{PRIVATE_REPO}/blobs/{config_digest(image)}").status_code == 307
    layer = image.layers[0].digest
    assert get(f"{url}/v2/priv/{PRIVATE_REPO}/blobs/{layer}").status_code == 307
    for other in ("local/team/private-wrapper", "priv/team/other", "local/library/busybox"):
        manifest = get(f"{url}/v2/{other}/manifests/{image.digest}")
        assert manifest.status_code == 404, (other, manifest.text)
        for digest in (config_digest(image), layer):
            blob = get(f"{url}/v2/{other}/blobs/{digest}")
            assert blob.status_code == 404, (other, digest, blob.text)
            assert get_head(f"{url}/v2/{other}/blobs/{digest}").status_code == 404


def get_head(url: str) -> requests.Response:
    response = requests.head(url, timeout=60, allow_redirects=False)
    ANSWERS.append(response)
    return response


def test_a_wrap_with_a_private_wrapper_shows_it_under_no_other_name(
    private_gw, private_layout, pushed_images
):
    url = private_gw.url
    base = f"local/{pushed_images['base'].path}"
    private = f"wrap/{base}/with/priv/{PRIVATE_REPO}/1"
    public = f"wrap/{base}/with/local/{pushed_images['wrapper'].path}"
    composed = get(f"{url}/v2/{private}/manifests/latest")
    assert composed.status_code == 200
    digest = composed.headers["Docker-Content-Digest"]
    manifest = composed.json()
    private_layer = manifest["layers"][-1]["digest"]
    assert private_layer == private_layout[1].layers[0].digest
    assert get(f"{url}/v2/{private}/manifests/{digest}").status_code == 200
    for name in (public, base, f"priv/{PRIVATE_REPO}"):
        assert get(f"{url}/v2/{name}/manifests/{digest}").status_code == 404, name
        for blob in (manifest["config"]["digest"], private_layer):
            if name.startswith("priv/") and blob == private_layer:
                continue  # the private repository itself has its own layer
            assert get(f"{url}/v2/{name}/blobs/{blob}").status_code == 404, (name, blob)


# -- who may pull -------------------------------------------------------------------------


@pytest.fixture
def locked_gw(gateway, aliases, tmp_path):
    users = tmp_path / "htpasswd"
    users.write_text(htpasswd_line(PULLER, PULL_PASSWORD) + "\n")
    return gateway(
        aliases=aliases, env={"REGISTRY_AUTH": "basic", "REGISTRY_AUTH_FILE": str(users)}
    )


def test_without_a_login_every_route_is_401(locked_gw, pushed_images):
    for path in ("/v2/", f"/v2/local/{pushed_images['base'].ref.replace(':', '/manifests/')}"):
        response = get(f"{locked_gw.url}{path}")
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Basic realm="ociwrap"'
    wrong = get(f"{locked_gw.url}/v2/", auth=(PULLER, "wrong"))
    assert wrong.status_code == 401
    assert get(f"{locked_gw.url}/v2/", auth=(PULLER, PULL_PASSWORD)).status_code == 200


def test_skopeo_pulls_with_creds_and_not_without(locked_gw, pushed_images, tmp_path):
    ref = f"{locked_gw.host}/local/{pushed_images['base'].ref}"
    with pytest.raises(ToolError):
        skopeo_copy(ref, tmp_path / "anonymous")
    skopeo_copy(ref, tmp_path / "logged-in", creds=f"{PULLER}:{PULL_PASSWORD}")


def test_podman_pulls_after_login(locked_gw, podman, pushed_images):
    ref = f"{locked_gw.host}/local/{pushed_images['base'].ref}"
    with pytest.raises(ToolError):
        podman.pull(ref)
    podman.login(locked_gw.host, PULLER, PULL_PASSWORD)
    assert "base-cmd" in podman.run(ref)


# -- no secret ever leaves ----------------------------------------------------------------


def test_no_secret_in_any_answer_or_log(login_issuer, tmp_path_factory):
    """Every answer above, headers and body, and every gateway log line of this module."""
    hidden = secrets([login_issuer])
    assert ANSWERS, "the tests above made no requests"
    for response in ANSWERS:
        text = response.text + json.dumps(dict(response.headers))
        for secret in hidden:
            assert secret not in text, f"a secret in an answer to {response.url}"
    logs = [p for p in Path(tmp_path_factory.getbasetemp()).rglob("*.log") if "gateway" in str(p)]
    assert logs
    for log in logs:
        text = log.read_text(errors="replace")
        for secret in hidden:
            assert secret not in text, f"a secret in {log}"
