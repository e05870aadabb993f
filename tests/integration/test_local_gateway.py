"""The local gateway (`python -m ociwrap_local`) as a process behaves like API Gateway + Lambda.

A real gateway process on 127.0.0.1 (started loopback-only by the harness) serves
`local_gateway_handler`, a tiny handler that keeps the current event in module state as
Powertools' resolver does. The gateway's pure parts are tested in
`tests/unit/test_local_events.py`.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.gateway import LocalGateway, gateway_pythonpath, gateway_without_s3
from harness.procs import clean_env, wait_until
from ociwrap_local.events import MAX_REQUEST_BODY_BYTES
from ociwrap_local.server import IDLE_TIMEOUT_SECONDS

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
ACCESS_LINE = re.compile(r'"(GET|HEAD) (/v2/\S+) HTTP/1.1" (\d+) (\d+)')


def test_stop_reports_deadline_exceeded_lines(tmp_path):
    gw = gateway_without_s3(tmp_path)
    gw.process.log_path.write_text(
        '127.0.0.1 "GET /v2/x HTTP/1.1" 200 2 31000.0ms\n'
        '127.0.0.1 DEADLINE EXCEEDED "GET /v2/x HTTP/1.1": answered after 31.0 s\n'
    )
    assert gw.stop() == ['127.0.0.1 DEADLINE EXCEEDED "GET /v2/x HTTP/1.1": answered after 31.0 s']
    assert gw.misdeeds() == gw.deadlines_exceeded


GatewayStarter = Callable[..., LocalGateway]


def serving_the_test_handler(workdir: Path, workers: int, **env: str) -> LocalGateway:
    """A gateway (not started) whose `workers` run `local_gateway_handler`."""
    return gateway_without_s3(
        workdir,
        PYTHONPATH=gateway_pythonpath(HERE),
        OCIWRAP_HANDLER_MODULE="local_gateway_handler",
        GATEWAY_WORKERS=str(workers),
        **env,
    )


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[GatewayStarter]:
    """`start_gateway(workers=2, **env)`: a gateway serving `local_gateway_handler`."""
    started: list[LocalGateway] = []

    def start(workers: int = 2, **env: str) -> LocalGateway:
        workdir = tmp_path / f"gw{len(started)}"
        workdir.mkdir()
        gw = serving_the_test_handler(workdir, workers, **env)
        started.append(gw)
        gw.start(timeout=20)
        _wait_for(lambda: len(gw.worker_pids()) == workers, f"{workers} workers")
        return gw

    yield start
    for gw in started:
        gw.stop()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalGateway]:
    """One gateway with two workers for the tests that don't stop or kill anything."""
    gw = serving_the_test_handler(tmp_path_factory.mktemp("served"), 2).start(timeout=20)
    yield gw
    gw.stop()


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    if not wait_until(condition, timeout, interval=0.02):
        raise AssertionError(f"no {what} within {timeout} s")


def _request(
    gw: LocalGateway,
    method: str,
    path: str,
    headers: dict | None = None,
    body: bytes = b"",
    timeout: float = 10.0,
) -> tuple[http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=timeout)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


def _raw(port: int, data: bytes, *, send_more: bytes = b"", timeout: float = 5.0) -> bytes:
    """Send `data`, then read the answer until the gateway closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if send_more:
            try:
                sock.sendall(send_more)
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # refused and closed before it was all sent: the point of the test
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def _status_and_body(reply: bytes) -> tuple[int, bytes]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_get_and_head_answers_like_api_gateway(served):
    response, body = _request(served, "HEAD", "/length")
    assert response.getheader("Content-Length") == "1234"  # the handler's, as on HEAD
    assert body == b""
    response, body = _request(served, "GET", "/length", {"Accept": "a/b"})
    assert body == b'{"ok":true}'
    assert response.getheader("Content-Length") == "11"  # the real one, as on GET
    assert response.getheader("X-Accept") == "a/b"


def test_the_event_keeps_every_detail_of_the_request(served):
    _, body = _request(
        served,
        "GET",
        "/echo?n=1&n=2&last=x",
        {"Accept": "a/b", "X-Multi": "1", "Cookie": "a=1; b=2"},
    )
    echoed = json.loads(body)
    assert echoed["rawQueryString"] == "n=1&n=2&last=x"
    assert echoed["query"] == {"n": "1,2", "last": "x"}
    assert echoed["headers"]["accept"] == "a/b"
    assert echoed["cookies"] == ["a=1", "b=2"]
    assert "cookie" not in echoed["headers"]


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE", "PATCH", "DELETE", "PUT", "BREW"])
def test_every_method_reaches_the_handler(served, method):
    response, body = _request(served, method, "/echo")
    assert response.status == 200, body
    assert json.loads(body)["method"] == method


def test_a_handler_that_raises_is_a_500_like_api_gateways(served):
    response, body = _request(served, "GET", "/raise")
    assert response.status == 500
    assert body == b'{"message":"Internal Server Error"}'
    assert "RuntimeError: the handler failed" in served.log()


def test_a_result_over_lambdas_6_mb_is_a_500(served):
    response, body = _request(served, "GET", "/huge")
    assert (response.status, body) == (500, b'{"message":"Internal Server Error"}')


def test_the_access_log_has_status_bytes_and_the_handlers_time(served):
    _request(served, "GET", "/v2/some/thing")
    lines: list[str] = []

    def logged() -> bool:
        lines[:] = [line for line in served.log().splitlines() if "/v2/some/thing" in line]
        return bool(lines)

    wait_until(logged, 5, interval=0.02)  # the line is written just after the answer is sent
    assert lines and ACCESS_LINE.search(lines[-1]), lines
    assert re.search(r'"GET /v2/some/thing HTTP/1.1" 200 2 \d+\.\dms$', lines[-1]), lines


def test_the_remaining_time_is_the_lambda_clock(served):
    _, body = _request(served, "GET", "/remaining")
    times = json.loads(body)
    # The 29 s of the function's timeout, counted from the invocation (not from the
    # gateway's start); the slack is for a loaded machine, not a measure of speed.
    assert 24_000 < times["first"] <= 29_000
    assert times["first"] - times["second"] >= 195  # it counts down (0.2 s slept) in ms


# -- request bodies: API Gateway's limit and Content-Length ------------------------------


def test_a_body_over_the_limit_is_refused_before_it_is_sent(served):
    head = (
        "PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {MAX_REQUEST_BODY_BYTES + 1}\r\n\r\n"
    ).encode()
    # Only 1 KiB of the 10 MiB announced is ever sent, and the connection stays open: a
    # gateway that waited for the rest would answer nothing before its 60 s idle time-out,
    # three times longer than this client waits for each read.
    reply = _raw(served.port, head + b"x" * 1024, timeout=IDLE_TIMEOUT_SECONDS / 3)
    status, body = _status_and_body(reply)
    assert (status, body) == (413, b'{"message":"Request Entity Too Large"}')
    assert '"PUT /echo HTTP/1.1" 413 38 -' in served.log()  # no handler time: not invoked


def test_expect_100_continue_over_the_limit_gets_413_not_100(served):
    head = (
        "PUT /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        f"Content-Length: {MAX_REQUEST_BODY_BYTES + 1}\r\n\r\n"
    ).encode()
    assert _raw(served.port, head).startswith(b"HTTP/1.1 413 ")


def test_a_body_at_the_limit_reaches_the_handler(served):
    body = b"\x00" * MAX_REQUEST_BODY_BYTES
    response, answer = _request(
        served, "PUT", "/echo", {"Content-Type": "application/octet-stream"}, body
    )
    assert response.status == 200
    assert json.loads(answer)["body_bytes"] == MAX_REQUEST_BODY_BYTES


def _chunked(total: int, chunk: int = 1024 * 1024) -> bytes:
    parts = []
    while total > 0:
        size = min(chunk, total)
        parts.append(f"{size:x}\r\n".encode() + b"y" * size + b"\r\n")
        total -= size
    return b"".join(parts) + b"0\r\n\r\n"


def test_a_chunked_body_is_read_only_up_to_the_limit(served):
    head = b"PUT /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    reply = _raw(served.port, head, send_more=_chunked(MAX_REQUEST_BODY_BYTES + 1))
    assert _status_and_body(reply) == (413, b'{"message":"Request Entity Too Large"}')


def test_a_chunked_body_under_the_limit_reaches_the_handler(served):
    head = b"PUT /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    head += b"Transfer-Encoding: chunked\r\n\r\n"
    status, body = _status_and_body(_raw(served.port, head + _chunked(3000, 1000)))
    assert status == 200
    assert json.loads(body)["body_bytes"] == 3000


@pytest.mark.parametrize(
    "lengths",
    [["abc"], ["-1"], ["+5"], ["1.0"], [""], ["٣"], ["5", "6"], ["5, 6"], ["5\t6"]],
)
def test_a_malformed_content_length_is_a_400(served, lengths):
    head = "PUT /echo HTTP/1.1\r\nHost: x\r\n"
    head += "".join(f"Content-Length: {value}\r\n" for value in lengths)
    data = head.encode() + b"\r\nhello"
    assert _status_and_body(_raw(served.port, data)) == (400, b'{"message":"Bad Request"}')


def test_repeated_equal_content_lengths_are_one(served):
    data = b"PUT /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    data += b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"
    status, body = _status_and_body(_raw(served.port, data))
    assert status == 200 and json.loads(body)["body_bytes"] == 5


def test_content_length_with_chunked_is_a_400(served):
    data = b"PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
    data += b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    assert _status_and_body(_raw(served.port, data)) == (400, b'{"message":"Bad Request"}')


# -- one event at a time per worker, workers in parallel -------------------------------


def _timed(response: http.client.HTTPResponse, body: bytes) -> dict:
    return {
        "method": response.getheader("X-Method"),
        "pid": int(response.getheader("X-Pid")),
        "start": float(response.getheader("X-Start")),
        "end": float(response.getheader("X-End")),
        "body": body,
    }


def _assert_not_mixed(answers: list[tuple[str, dict]]) -> None:
    for method, answer in answers:
        assert answer["method"] == method
        if method == "GET":
            assert json.loads(answer["body"])["method"] == "GET"
        else:
            assert answer["body"] == b""


def test_concurrent_gets_and_heads_never_mix_their_answers(start_gateway):
    gw = start_gateway(workers=2)
    methods = ["GET", "HEAD"] * 10
    barrier = threading.Barrier(len(methods))  # all at once, however the threads start

    def ask(method: str) -> tuple[str, dict]:
        barrier.wait()
        return method, _timed(*_request(gw, method, "/sleep/0.05"))

    with ThreadPoolExecutor(len(methods)) as pool:
        answers = list(pool.map(ask, methods))
    _assert_not_mixed(answers)
    assert {answer["pid"] for _, answer in answers} == set(gw.worker_pids())


def test_one_worker_serves_one_event_at_a_time_even_on_two_connections(start_gateway):
    gw = start_gateway(workers=1)
    first = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    second = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    for conn in (first, second):  # two keep-alive connections, both on the one worker
        conn.request("GET", "/v2/")
        conn.getresponse().read()
    barrier = threading.Barrier(2)

    def ask(conn: http.client.HTTPConnection, method: str) -> tuple[str, dict]:
        barrier.wait()
        conn.request(method, "/sleep/0.3")
        response = conn.getresponse()
        return method, _timed(response, response.read())

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(ask, (first, second), ("GET", "HEAD")))
    first.close()
    second.close()
    _assert_not_mixed(answers)
    (_, a), (_, b) = answers
    assert a["pid"] == b["pid"]
    assert a["end"] <= b["start"] or b["end"] <= a["start"], "the handler ran twice at once"


def test_two_workers_serve_two_events_in_parallel(start_gateway, tmp_path):
    """Each event waits in its handler until the other one is in its own: they meet only
    if both are handled at once (one at a time, the first would wait in vain)."""
    gw = start_gateway(workers=2)
    meeting = tmp_path / "meeting"  # each event leaves a file `<pid>-<random>` here
    meeting.mkdir()
    barrier = threading.Barrier(2)

    def ask(method: str) -> tuple[str, dict]:
        barrier.wait()
        response, body = _request(gw, method, f"/meet/2?at={meeting}", timeout=30)
        return method, {"method": response.getheader("X-Method"), "body": body}

    with ThreadPoolExecutor(2) as pool:
        (get, head) = pool.map(ask, ("GET", "HEAD"))
    _assert_not_mixed([get, head])
    assert json.loads(get[1]["body"])["met"] is True, "the two events were not handled at once"
    pids = sorted(int(name.name.split("-")[0]) for name in meeting.iterdir())
    assert pids == sorted(gw.worker_pids())  # one event in each worker


def test_sequential_requests_stay_on_one_warm_worker(start_gateway, tmp_path):
    gw = start_gateway(workers=4)
    # Four events that can only end together: every worker has started and said it is
    # idle before the test begins (a worker still starting up would say so later, and be
    # the most recently idle one for the next request).
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    with ThreadPoolExecutor(4) as pool:
        met = pool.map(lambda _: _request(gw, "GET", f"/meet/4?at={meeting}", timeout=30), "abcd")
        assert [json.loads(body)["met"] for _, body in met] == [True] * 4
    pids = set()
    for _ in range(8):
        pids.add(json.loads(_request(gw, "GET", "/echo")[1])["pid"])
        # The worker says it is idle just before it answers; a request that reaches the
        # gateway before it has read that finds the worker busy, as Lambda would, and
        # goes to another. The pause leaves the gateway time to read it, even when loaded.
        time.sleep(0.25)
    assert len(pids) == 1  # as Lambda reuses a warm instance: its caches stay warm too


def test_a_busy_worker_takes_no_new_connections(start_gateway, tmp_path):
    gw = start_gateway(workers=2)
    hold = tmp_path / "hold"
    hold.mkdir()
    slow = ThreadPoolExecutor(1)
    busy = slow.submit(_request, gw, "GET", f"/hold?at={hold}", timeout=30)
    try:
        _wait_for((hold / "held").exists, "the held event in its handler")
        held_pid = int((hold / "held").read_text())
        # Each on a new connection, all while the held event waits for the test to let it
        # go: one handed to the busy worker would get no answer before its client gave up.
        quick = [int(_request(gw, "GET", "/sleep/0")[0].getheader("X-Pid")) for _ in range(4)]
    finally:
        (hold / "release").touch()
    _, body = busy.result()
    slow.shutdown()
    assert json.loads(body) == {"method": "GET", "pid": held_pid, "released": True}
    assert held_pid not in quick and len(set(quick)) == 1, (held_pid, quick)


def test_idle_connections_block_no_other_client(start_gateway):
    gw = start_gateway(workers=1)
    kept = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    kept.request("GET", "/v2/")
    kept.getresponse().read()  # a keep-alive connection, now idle
    silent = socket.create_connection(("127.0.0.1", gw.port))  # connects, never sends
    try:
        # Both stay open for the gateway's 60 s idle time-out; blocked behind them, this
        # request would have no answer before its client gives up, at a third of that.
        response, _ = _request(gw, "GET", "/v2/", timeout=IDLE_TIMEOUT_SECONDS / 3)
        assert response.status == 200
        kept.request("GET", "/v2/")  # and the kept connection still works
        assert kept.getresponse().status == 200
        silent.setblocking(False)
        with pytest.raises(BlockingIOError):  # the silent one is still open, nothing sent
            silent.recv(1)
    finally:
        kept.close()
        silent.close()


# -- the worker processes ---------------------------------------------------------------


def test_a_dead_worker_is_replaced(start_gateway):
    gw = start_gateway(workers=2)
    victim, survivor = gw.worker_pids()
    os.kill(victim, signal.SIGKILL)
    _wait_for(lambda: len(gw.worker_pids()) == 2 and victim not in gw.worker_pids(), "replacement")
    assert survivor in gw.worker_pids()
    notice = f"(pid {victim}) was killed by SIGKILL; starting another"
    _wait_for(lambda: notice in gw.log(), "the notice in the log")
    pids = set()
    for _ in range(6):
        response, body = _request(gw, "GET", "/echo")
        assert response.status == 200
        pids.add(json.loads(body)["pid"])
    assert victim not in pids


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_the_workers_and_the_gateway(start_gateway, sig):
    gw = start_gateway(workers=3)
    workers = gw.worker_pids()
    os.kill(gw.process.pid, sig)  # the gateway alone, not its process group
    _wait_for(lambda: not gw.process.alive, "exit", timeout=10)
    assert gw.process.returncode == 0
    assert re.search(r"stopped after \d+ s", gw.log())
    assert [pid for pid in workers if Path(f"/proc/{pid}").exists()] == []


def test_a_bad_worker_count_is_refused(tmp_path):
    env = clean_env(
        {
            "PYTHONPATH": gateway_pythonpath(HERE),
            "OCIWRAP_HANDLER_MODULE": "local_gateway_handler",
            "S3_ENDPOINT_URL": "http://127.0.0.1:9",
            "GATEWAY_WORKERS": "0",
            "PORT": "0",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "ociwrap_local"], env=env, capture_output=True, timeout=30
    )
    assert done.returncode == 2
    assert b"GATEWAY_WORKERS" in done.stderr


def test_the_embedded_s3_is_a_child_process_stopped_with_the_gateway(start_gateway):
    gw = start_gateway(workers=1, S3_ENDPOINT_URL="", ARTIFACT_BUCKET="ociwrap-local")
    line = r"embedded S3 at (http://127\.0\.0\.1:\d+) \(bucket ociwrap-local\)"
    match = re.search(line, gw.log())
    assert match, gw.log()
    assert (
        _get_direct(f"{match.group(1)}/ociwrap-local") == 200
    )  # the bucket was made before the workers started
    parent = gw.process.pid
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    s3_pids = [int(pid) for pid in children if int(pid) not in gw.worker_pids()]
    assert len(s3_pids) == 1
    assert b"moto.server" in Path(f"/proc/{s3_pids[0]}/cmdline").read_bytes()
    assert "with threads" not in gw.log()  # the parent forked its workers with none
    os.kill(parent, signal.SIGTERM)
    _wait_for(lambda: not gw.process.alive, "exit", timeout=10)
    assert gw.process.returncode == 0
    assert not Path(f"/proc/{s3_pids[0]}").exists()


def _get_direct(url: str) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as reply:
        return reply.status


# -- the tests' loopback-only guard -----------------------------------------------------


def test_the_test_gateway_cannot_connect_beyond_loopback(served):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        _, body = _request(served, "GET", f"/connect/127.0.0.1/{port}")
        assert json.loads(body) == {"create_connection": "connected", "connect": "connected"}
    assert served.connect_attempts() == []
    _, body = _request(served, "GET", "/connect/10.255.255.1/80")
    outcome = json.loads(body)
    assert "network disabled in tests" in outcome["create_connection"]
    assert "network disabled in tests" in outcome["connect"]
    assert served.connect_attempts() == ["10.255.255.1:80", "10.255.255.1:80"]
    _, body = _request(served, "GET", "/resolve/registry.example.com")
    assert "network disabled in tests" in json.loads(body)["getaddrinfo"]
    assert served.lookup_attempts() == ["registry.example.com"]
    served.connect_log.unlink()  # the module's gateway is shared: leave it clean
    served.lookup_log.unlink()
