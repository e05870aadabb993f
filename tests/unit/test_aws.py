"""AWS clients on the request's deadline: attempts refused once it has passed, at most three
attempts, short time-outs, S3 calls counted into the request's statistics, and presigned
URLs in the style clients can follow. AWS is a scripted endpoint on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError
from botocore.retries import standard
from botocore.stub import Stubber

from doubles.aws_endpoint import AwsEndpoint
from ociwrap.runtime import aws, deadline, telemetry
from ociwrap.runtime.aws import make_client, make_s3_client
from ociwrap.runtime.errors import RegistryError

BUCKETS = b"<ListAllMyBucketsResult><Buckets></Buckets></ListAllMyBucketsResult>"
BUCKET = "ociwrap-artifacts"


@pytest.fixture
def environment(monkeypatch, tmp_path) -> None:
    """Credentials and nothing else: no region, no profile, no configuration file."""
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")


@pytest.fixture
def service(environment, monkeypatch) -> Iterator[AwsEndpoint]:
    """S3 (by `endpoint_url`) and ECR on 127.0.0.1, answering an empty listing of buckets."""
    # botocore waits up to seconds between attempts; the attempts are what is counted here
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
    endpoint = AwsEndpoint().start()
    endpoint.answer = lambda request: (200, BUCKETS)
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", endpoint.url)
    yield endpoint
    endpoint.stop()


def sent(endpoint: AwsEndpoint) -> list[str]:
    return [f"{request.method} {request.path}" for request in endpoint.requests]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refused(call) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        call()
    return caught.value


# -- the deadline -----------------------------------------------------------------------------


def test_no_s3_attempt_is_made_after_the_deadline(service):
    clock = Clock()
    passed = deadline.Deadline(20, clock)
    clock.now += 20
    s3 = make_s3_client(service.url)
    with deadline.within(passed):
        error = refused(s3.list_buckets)
    assert (error.status, error.code) == (504, "UNAVAILABLE")
    assert error.message == (
        "the request's deadline (20 s) ran out while waiting for artifact storage (S3)"
    )
    assert sent(service) == []


def test_no_attempt_of_another_service_is_made_after_the_deadline(service):
    clock = Clock()
    passed = deadline.Deadline(12, clock)
    clock.now += 12.5
    ecr = make_client("ecr", "Amazon ECR", "us-east-1")
    with deadline.within(passed):
        error = refused(ecr.describe_repositories)
    assert (error.status, error.code) == (504, "UNAVAILABLE")
    assert error.message == "the request's deadline (12 s) ran out while waiting for Amazon ECR"
    assert sent(service) == []


def test_a_retry_after_the_deadline_is_not_sent(service):
    clock = Clock()

    def failed_while_time_passed(request) -> tuple[int, bytes]:
        clock.now += 10
        return 500, b""

    service.answer = failed_while_time_passed
    s3 = make_s3_client(service.url)
    with deadline.within(deadline.Deadline(10, clock)):
        assert refused(s3.list_buckets).status == 504
    assert sent(service) == ["GET /"]


def test_calls_within_the_deadline_or_without_one_are_sent(service):
    clock = Clock()
    s3 = make_s3_client(service.url)
    with deadline.within(deadline.Deadline(10, clock)):
        clock.now += 9.5
        assert s3.list_buckets()["Buckets"] == []
    assert s3.list_buckets()["Buckets"] == []
    ecr = make_client("ecr", "Amazon ECR")
    service.answer_json(200, {"repositories": []})
    with deadline.within(deadline.Deadline(10, clock)):
        assert ecr.describe_repositories()["repositories"] == []
    assert len(service.requests) == 3


# -- attempts and time-outs -------------------------------------------------------------------


def test_a_failing_call_is_tried_three_times(service):
    service.answer = lambda request: (500, b"")
    with pytest.raises(ClientError):
        make_s3_client(service.url).list_buckets()
    assert sent(service) == ["GET /"] * 3
    service.requests.clear()
    service.answer_json(500, {"__type": "ServerException", "message": "try again"})
    with pytest.raises(ClientError):
        make_client("ecr", "Amazon ECR").describe_repositories()
    assert len(service.requests) == 3


@pytest.mark.parametrize(
    "client",
    [
        lambda: make_s3_client(),
        lambda: make_s3_client("http://127.0.0.1:9000"),
        lambda: make_client("secretsmanager", "the secrets service"),
    ],
)
def test_time_outs_are_short_and_retries_standard(environment, client):
    config = client().meta.config
    assert (config.connect_timeout, config.read_timeout) == (2, 5)
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}


# -- regions ----------------------------------------------------------------------------------


def test_the_region_is_the_one_given_else_the_sessions_else_us_east_1(environment, monkeypatch):
    assert make_client("ecr", "Amazon ECR", "eu-west-1").meta.region_name == "eu-west-1"
    assert make_s3_client(region="eu-west-1").meta.region_name == "eu-west-1"
    assert make_client("ecr", "Amazon ECR").meta.region_name == "us-east-1"
    assert make_s3_client().meta.region_name == "us-east-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    assert make_client("ecr", "Amazon ECR").meta.region_name == "ap-south-1"
    assert make_s3_client().meta.region_name == "ap-south-1"
    assert make_client("ecr", "Amazon ECR", "eu-west-1").meta.region_name == "eu-west-1"


# -- S3 calls in the request's statistics -----------------------------------------------------


@pytest.fixture
def timer(monkeypatch) -> list[float]:
    """The times `perf_counter` tells the S3 hooks, in order."""
    readings: list[float] = []
    monkeypatch.setattr(aws, "time", SimpleNamespace(perf_counter=lambda: readings.pop(0)))
    return readings


def test_each_s3_call_is_counted_with_its_time_failed_or_not(service, timer):
    s3 = make_s3_client(service.url)
    timer.extend([50.0, 50.25, 60.0, 60.5])
    with telemetry.collecting() as stats:
        s3.list_buckets()
        service.answer = lambda request: (404, b"")
        with pytest.raises(ClientError):
            s3.list_buckets()
    assert (stats.s3_calls, stats.s3_ms) == (2, 750.0)
    assert timer == []


def test_an_s3_call_that_raised_is_counted_with_its_time(service, timer):
    clock = Clock()
    passed = deadline.Deadline(5, clock)
    clock.now += 5
    s3 = make_s3_client(service.url)
    timer.extend([70.0, 70.125])
    with telemetry.collecting() as stats, deadline.within(passed):
        assert refused(s3.list_buckets).status == 504
    assert (stats.s3_calls, stats.s3_ms) == (1, 125.0)


def test_calls_of_other_services_are_not_s3_calls(service, timer):
    service.answer_json(200, {"repositories": []})
    with telemetry.collecting() as stats:
        make_client("ecr", "Amazon ECR").describe_repositories()
    assert stats.s3_calls == 0 and timer == []


def test_an_s3_call_answered_before_it_started_is_not_counted(environment, timer):
    s3 = make_s3_client(region="us-east-1")
    with telemetry.collecting() as stats, Stubber(s3) as stub:
        stub.add_response("list_buckets", {"Buckets": []})
        assert s3.list_buckets()["Buckets"] == []
    assert stats.s3_calls == 0


# -- presigned URLs ---------------------------------------------------------------------------


def presigned(s3) -> tuple[str, str, str]:
    url = urlsplit(s3.generate_presigned_url("get_object", {"Bucket": BUCKET, "Key": "blobs/x"}))
    return f"{url.scheme}://{url.netloc}", url.path, url.query


def test_presigned_urls_of_a_custom_endpoint_are_path_style_sigv4(environment):
    origin, path, query = presigned(make_s3_client("http://127.0.0.1:9000"))
    assert (origin, path) == ("http://127.0.0.1:9000", f"/{BUCKET}/blobs/x")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in query.split("&")


def test_presigned_urls_on_aws_are_virtual_hosted_on_the_regional_endpoint(environment):
    origin, path, query = presigned(make_s3_client(region="eu-west-1"))
    assert (origin, path) == (f"https://{BUCKET}.s3.eu-west-1.amazonaws.com", "/blobs/x")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in query.split("&")
    assert any(part.startswith("X-Amz-Credential=AKIDEXAMPLE") for part in query.split("&"))
