"""A registry aliased to itself: the request loops once and is refused, not a cascade.

The gateway (`python -m ociwrap_local`, the handler the Lambda runs) gets the alias
`self=http://127.0.0.1:<its own port>`, so `self/self/self/local/...` would hop through it
once per `self/` before reaching the docker-registry aliased `local`. With hop markers the
first hop comes back carrying the gateway's own `Via` entry and is refused: the client gets
the loop error, and the gateway received two requests for the name in all.
"""

from __future__ import annotations

import re
import time

import pytest
import requests

from harness.clients import ToolError, skopeo_inspect_bytes
from harness.gateway import LocalGateway
from harness.procs import free_port

pytestmark = pytest.mark.integration

NAME = "self/self/self/local/library/busybox"


def registry_requests(log: str) -> list[tuple[str, str, int]]:
    """(method, path, status) of every `/v2/<name>/...` request the gateway received."""
    return [
        (match[1], match[2], int(match[3]))
        for match in re.finditer(r'"(GET|HEAD) (/v2/\S+/manifests/\S+) HTTP/1.1" (\d+)', log)
    ]


def received_by(gateway: LocalGateway, expected: int) -> list[tuple[str, str, int]]:
    """The manifest requests `gateway` received, once it logged `expected` of them (it logs
    a request after answering it) and was stopped (so none can come after)."""
    end = time.monotonic() + 20
    while len(registry_requests(gateway.log())) < expected and time.monotonic() < end:
        time.sleep(0.05)
    gateway.stop()
    return registry_requests(gateway.log())


@pytest.fixture
def looping(gateway, upstream_aliases):
    """A gateway whose alias `self` is itself (no PUBLIC_HOSTNAME: nothing tells it so
    but the `Via` entry its own request comes back with)."""
    port = free_port()
    return gateway(port=port, aliases={**upstream_aliases, "self": f"http://127.0.0.1:{port}"})


def test_a_pull_through_itself_is_one_hop_and_a_loop_error(looping, pushed_images):
    answer = requests.get(f"{looping.url}/v2/{NAME}/manifests/1", timeout=60)
    assert answer.status_code == 403
    error = answer.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert error["message"].startswith("request loop:")
    assert "self" in error["message"]
    received = received_by(looping, 2)
    assert len(received) == 2, received  # the client's request and its one hop
    assert received[0][1] == f"/v2/{NAME.removeprefix('self/')}/manifests/1"  # the hop
    assert [status for *_rest, status in received] == [403, 403]


def test_a_client_is_told_it_is_a_loop(looping, pushed_images):
    with pytest.raises(ToolError) as failed:
        skopeo_inspect_bytes(f"127.0.0.1:{looping.port}/{NAME}:1", raw=True)
    assert "request loop" in str(failed.value)
