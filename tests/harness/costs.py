"""What pulls through ociwrap cost on AWS, from what the benchmark measured per pull.

The benchmark counts, for each pull, the requests ociwrap answered (each one an API Gateway
HTTP API request and a Lambda invocation), how long each invocation ran, the S3 requests on
our bucket by price tier, the bytes the function logged and the bytes clients downloaded
from our bucket. This module turns those counts into dollars per million pulls at list
prices, itemised, so a change to the code shows up as a change in the bill, not only in
seconds. Everything here is pure (no I/O) except `function_from_template`, which reads the
memory size and architecture the template deploys, so the figures follow the template.

The prices live in one table, `PRICES`, with where they were read and when; the report
prints them under its cost table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

#: The region the prices are for, and the day they were checked.
REGION = "us-east-1"
PRICES_CHECKED = "2026-12-03"
#: AWS bills data in binary gigabytes (GB = 2^30 bytes) and Lambda memory as MB / 1024.
GB = 1024**3
MILLION = 1_000_000


@dataclass(frozen=True)
class Price:
    """One list price as AWS quotes it: `usd` for `per` `unit`s of `what`."""

    key: str
    usd: float
    per: int
    unit: str
    what: str

    @property
    def per_unit(self) -> float:
        return self.usd / self.per


# List prices, us-east-1, checked 2026-12-03 (PRICES_CHECKED). Sources: the AWS pricing
# pages https://aws.amazon.com/api-gateway/pricing/ (HTTP APIs, first 300 million requests
# a month, metered per 512 KB), https://aws.amazon.com/lambda/pricing/ (requests, duration
# per architecture for the first 6 / 7.5 billion GB-seconds a month, SnapStart for Python),
# https://aws.amazon.com/s3/pricing/ (S3 Standard requests; data transfer out to the internet,
# first 10 TB a month), https://aws.amazon.com/cloudwatch/pricing/ (Logs, Standard class,
# collection). AWS's pages render their rates client-side, so they were checked against
# copies of those pages and third-party write-ups of them; the SnapStart rates only against
# third-party write-ups (README, "Costs").
PRICES: tuple[Price, ...] = (
    Price("api_request", 1.00, MILLION, "requests", "API Gateway HTTP API"),
    Price("lambda_request", 0.20, MILLION, "requests", "Lambda requests"),
    Price("lambda_gb_second_arm64", 0.0000133334, 1, "GB-second", "Lambda duration, arm64"),
    Price("lambda_gb_second_x86_64", 0.0000166667, 1, "GB-second", "Lambda duration, x86_64"),
    Price("snapstart_restore", 0.0001397998, 1, "GB restored", "SnapStart restore (Python)"),
    Price("snapstart_cache", 0.0000015046, 1, "GB-second cached", "SnapStart cache (Python)"),
    Price("s3_get", 0.0004, 1000, "requests", "S3 Standard GET, HEAD (and other)"),
    Price("s3_put", 0.005, 1000, "requests", "S3 Standard PUT, COPY, POST, LIST"),
    Price("logs_ingested", 0.50, 1, "GB", "CloudWatch Logs ingestion (Standard)"),
    Price("s3_transfer_out", 0.09, 1, "GB", "S3 data transfer out to the internet"),
)
#: Dollars per single unit (one request, one GB-second, one GB), by key.
PRICE_BY_KEY: Mapping[str, float] = {price.key: price.per_unit for price in PRICES}

#: The dollar items of a pull, in report order; `total` is their sum.
ITEMS = (
    ("api", "API Gateway"),
    ("lambda_requests", "Lambda requests"),
    ("lambda_compute", "Lambda compute"),
    ("snapstart_restore", "SnapStart restore"),
    ("s3_requests", "S3 requests"),
    ("logs", "CloudWatch Logs"),
)


@dataclass(frozen=True)
class Function:
    """What Lambda bills duration and restores by: memory and architecture."""

    memory_mb: int
    architecture: str

    @property
    def memory_gb(self) -> float:
        return self.memory_mb / 1024


@dataclass(frozen=True)
class PullUsage:
    """What one pull used, as measured (medians over repetitions may be fractional).

    `requests`: ociwrap requests (API Gateway requests = Lambda invocations).
    `billed_ms`: Lambda milliseconds billed, see `billed_ms`.
    `s3_get`, `s3_put`: S3 requests on our bucket by price tier (see `s3_tier`), the
    function's and the clients' (presigned GETs) alike.
    `log_bytes`: bytes the function wrote to its log (JSON lines, EMF included).
    `restores`: SnapStart restores the pull caused (a cold pull: one instance).
    `bucket_bytes_out`: bytes clients downloaded from our bucket (priced apart: it
    depends on the image, not on ociwrap).
    """

    requests: float
    billed_ms: float
    s3_get: float
    s3_put: float
    log_bytes: float
    restores: float = 0
    bucket_bytes_out: float = 0


def billed_ms(durations_ms: Sequence[float]) -> int:
    """Lambda bills each invocation's duration rounded up to the next millisecond (at
    least 1 ms), so a pull's billed time is the sum of its requests' rounded durations,
    not the rounded sum."""
    return sum(max(1, math.ceil(ms)) for ms in durations_ms)


def s3_tier(method: str, target: str) -> str:
    """The price tier of one S3 request: `put` (PUT, COPY, POST, LIST), `get` (GET, HEAD and
    every other request) or `free` (DELETE). `target` is the path-style request target,
    `/<bucket>[/<key>][?query]`: a GET of the bucket itself lists it (ListObjects,
    ListMultipartUploads), as does a GET of an upload's parts (`?uploadId=`)."""
    method = method.upper()
    if method == "DELETE":
        return "free"
    if method in ("PUT", "POST"):
        return "put"
    parts = urlsplit(target)
    has_key = "/" in parts.path.strip("/")
    if method == "GET" and (not has_key or "uploadId" in parse_qs(parts.query)):
        return "put"
    return "get"


def per_million_pulls(
    usage: PullUsage, function: Function, prices: Mapping[str, float] = PRICE_BY_KEY
) -> dict[str, float]:
    """Dollars per million pulls, itemised (`ITEMS`), their `total`, and `transfer_out`
    (data transfer out of our bucket, kept out of the total: it scales with the image)."""
    gb_second = prices[f"lambda_gb_second_{function.architecture}"]
    per_pull = {
        "api": usage.requests * prices["api_request"],
        "lambda_requests": usage.requests * prices["lambda_request"],
        "lambda_compute": usage.billed_ms / 1000 * function.memory_gb * gb_second,
        "snapstart_restore": usage.restores * function.memory_gb * prices["snapstart_restore"],
        "s3_requests": usage.s3_get * prices["s3_get"] + usage.s3_put * prices["s3_put"],
        "logs": usage.log_bytes / GB * prices["logs_ingested"],
    }
    dollars = {key: value * MILLION for key, value in per_pull.items()}
    dollars["total"] = sum(dollars.values())
    dollars["transfer_out"] = usage.bucket_bytes_out / GB * prices["s3_transfer_out"] * MILLION
    return dollars


def snapstart_cache_per_month(
    function: Function, prices: Mapping[str, float] = PRICE_BY_KEY, days: int = 30
) -> float:
    """Dollars a month for keeping one published version's snapshot cached: a fixed cost
    of the deployment, not of a pull."""
    return function.memory_gb * days * 86400 * prices["snapstart_cache"]


# -- the template ---------------------------------------------------------------------------


class _TemplateLoader(yaml.SafeLoader):
    """Reads a CloudFormation template, its short-form tags (`!Ref`, `!If`, ...) as None:
    only plain values are needed here."""


_TemplateLoader.add_multi_constructor("!", lambda _loader, _suffix, _node: None)


def function_from_template(template: Path, resource: str = "RegistryFunction") -> Function:
    """The memory size and architecture `template` deploys `resource` with: its own
    properties, else the template's Globals.Function (as SAM applies them)."""
    document: dict[str, Any] = yaml.load(template.read_text(), Loader=_TemplateLoader)
    globals_ = (document.get("Globals") or {}).get("Function") or {}
    own = ((document.get("Resources") or {}).get(resource) or {}).get("Properties") or {}
    memory = own.get("MemorySize", globals_.get("MemorySize", 128))
    architectures = own.get("Architectures", globals_.get("Architectures", ["x86_64"]))
    return Function(int(memory), str(architectures[0]))
