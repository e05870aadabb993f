"""What each request leaves behind: one structured log line and CloudWatch metrics (EMF).

The log line says what was asked and what it cost: route kind and name, status,
whether caches answered it all (`cache: hit`) or an upstream was asked, upstream
and S3 calls and their time, the request id (Powertools adds it). Never a header,
so never a login or token. Metrics go to the `ociwrap` namespace as Embedded
Metric Format documents on stdout, which CloudWatch turns into metrics for free:
requests, errors and latency; compositions, stale answers, cache hits and misses
by level; upstream requests, errors and latency by registry; redirects by target.
"""

from __future__ import annotations

import os
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from ociwrap.runtime.telemetry import RequestStats
from routes import parse_route

NAMESPACE = "ociwrap"
logger = Logger(service="ociwrap", level=os.environ.get("LOG_LEVEL", "INFO").upper())
metrics = Metrics(namespace=NAMESPACE, service="ociwrap")
#: Answers from these levels are cache hits; "upstream" is a miss.
HIT_LEVELS = ("memory", "s3", "stored")


def route_of(path: str) -> tuple[str, str]:
    """(kind, name) of a request path, for logs and metrics."""
    if path.startswith("/v1alpha/"):
        return "tokens", ""
    route = parse_route(path)
    if route is None:
        return "other", ""
    return route.kind, route.name[:255]


def record(event: dict, result: dict, stats: RequestStats, started: float) -> None:
    """Log the request's line and add its metrics (flushed when the invocation ends)."""
    milliseconds = round((time.perf_counter() - started) * 1000, 1)
    http = event.get("requestContext", {}).get("http", {})
    kind, name = route_of(str(event.get("rawPath", "")))
    status = int(result.get("statusCode", 0))
    logger.info(
        "request",
        extra={
            "method": http.get("method"),
            "kind": kind,
            "repository": name,
            "status": status,
            "cache": "hit" if stats.upstream_calls == 0 else "miss",
            "upstream_calls": stats.upstream_calls,
            "upstream_ms": round(stats.upstream_ms, 1),
            "s3_calls": stats.s3_calls,
            "s3_ms": round(stats.s3_ms, 1),
            "compositions": stats.events["compositions"],
            "stale": stats.events["stale"],
            "signatures": stats.events["signatures"],
            "attestations": stats.events["attestations"],
            "ms": milliseconds,
        },
    )
    metrics.add_metric("Requests", MetricUnit.Count, 1)
    metrics.add_metric("Latency", MetricUnit.Milliseconds, milliseconds)
    metrics.add_metric("Errors", MetricUnit.Count, 1 if status >= 500 else 0)
    metrics.add_metric("UpstreamRequests", MetricUnit.Count, stats.upstream_calls)
    failed = sum(int(errors) for _calls, errors, _ms in stats.registries.values())
    metrics.add_metric("UpstreamErrors", MetricUnit.Count, failed)
    metrics.add_metric("S3Requests", MetricUnit.Count, stats.s3_calls)
    for name_, key in (
        ("Compositions", "compositions"),
        ("StaleAnswers", "stale"),
        ("Signatures", "signatures"),
        ("Attestations", "attestations"),
    ):
        if stats.events[key]:
            metrics.add_metric(name_, MetricUnit.Count, stats.events[key])
    for (what, level), count in sorted(stats.cache.items()):
        hit = level in HIT_LEVELS
        _dimensioned(
            "CacheHits" if hit else "CacheMisses",
            MetricUnit.Count,
            count,
            {"What": what, "Level": level},
        )
    for registry, (calls, failed, total) in sorted(stats.registries.items()):
        dimensions = {"Registry": registry}
        _dimensioned("RegistryRequests", MetricUnit.Count, calls, dimensions)
        _dimensioned("RegistryErrors", MetricUnit.Count, failed, dimensions)
        _dimensioned("RegistryLatency", MetricUnit.Milliseconds, total / calls, dimensions)
    for target, count in sorted(stats.redirects.items()):
        _dimensioned("Redirects", MetricUnit.Count, count, {"Target": target})


def _dimensioned(name: str, unit: Any, value: float, dimensions: dict[str, str]) -> None:
    """A metric with dimensions of its own (one EMF document each)."""
    with single_metric(
        name=name,
        unit=unit,
        value=value,
        namespace=NAMESPACE,
        default_dimensions={"service": "ociwrap", **dimensions},
    ):
        pass


def tracing(handler: Any) -> Any:
    """X-Ray tracing of the handler when switched on (`POWERTOOLS_TRACE_DISABLED=false`,
    which the template sets with `Tracing=Active`); nothing is imported otherwise."""
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").strip().lower() != "false":
        return handler
    from aws_lambda_powertools import Tracer

    return Tracer(service="ociwrap").capture_lambda_handler(handler)
