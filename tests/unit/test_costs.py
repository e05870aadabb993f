"""The cost model of `make bench`: dollars per million pulls from measured counts.

Expected values are worked out by hand from the list prices (spelled out in each test),
never by calling the code under test, so a wrong formula or a wrong price fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.costs import (
    ITEMS,
    PRICE_BY_KEY,
    PRICES,
    Function,
    PullUsage,
    billed_ms,
    function_from_template,
    per_million_pulls,
    s3_tier,
    snapstart_cache_per_month,
)

ROOT = Path(__file__).resolve().parents[2]
ARM_512 = Function(512, "arm64")


def test_the_price_table_holds_the_list_prices() -> None:
    """The figures the README names; a changed price must change both."""
    expected = {
        "api_request": pytest.approx(0.000001),
        "lambda_request": pytest.approx(0.0000002),
        "lambda_gb_second_arm64": 0.0000133334,
        "lambda_gb_second_x86_64": 0.0000166667,
        "snapstart_restore": 0.0001397998,
        "snapstart_cache": 0.0000015046,
        "s3_get": pytest.approx(0.0000004),
        "s3_put": pytest.approx(0.000005),
        "logs_ingested": 0.50,
        "s3_transfer_out": 0.09,
    }
    assert dict(PRICE_BY_KEY) == expected
    quoted = {price.key: (price.usd, price.per) for price in PRICES}
    assert quoted == {
        "api_request": (1.00, 1_000_000),
        "lambda_request": (0.20, 1_000_000),
        "lambda_gb_second_arm64": (0.0000133334, 1),
        "lambda_gb_second_x86_64": (0.0000166667, 1),
        "snapstart_restore": (0.0001397998, 1),
        "snapstart_cache": (0.0000015046, 1),
        "s3_get": (0.0004, 1000),
        "s3_put": (0.005, 1000),
        "logs_ingested": (0.50, 1),
        "s3_transfer_out": (0.09, 1),
    }
    assert all(price.unit and price.what for price in PRICES)
    assert len({price.key for price in PRICES}) == len(PRICES)


def test_a_warm_pull_itemised() -> None:
    # 7 requests: API $1.00/M -> $7.00; Lambda $0.20/M -> $1.40.
    # 120 ms at 0.5 GB = 0.06 GB-s x $0.0000133334 = $0.000000800004 a pull -> $0.800004.
    # S3: 10 GET x $0.0004/1000 = $0.000004 -> $4.00; 3 PUT x $0.005/1000 -> $15.00.
    # Logs: 8192 bytes = 1/131072 GB x $0.50 = $0.000003814697265625 -> $3.814697265625.
    usage = PullUsage(requests=7, billed_ms=120, s3_get=10, s3_put=3, log_bytes=8192)
    dollars = per_million_pulls(usage, ARM_512)
    assert dollars == pytest.approx(
        {
            "api": 7.00,
            "lambda_requests": 1.40,
            "lambda_compute": 0.800004,
            "snapstart_restore": 0.0,
            "s3_requests": 19.00,
            "logs": 3.814697265625,
            "total": 32.014701265625,
            "transfer_out": 0.0,
        },
        rel=1e-12,
    )


def test_a_cold_pull_pays_one_restore_and_transfer_is_apart() -> None:
    # Restore: 0.5 GB x $0.0001397998 = $0.0000698999 a pull -> $69.8999.
    # Transfer: 2^28 bytes = 0.25 GB x $0.09 = $0.0225 a pull -> $22,500, not in the total.
    usage = PullUsage(
        requests=7,
        billed_ms=120,
        s3_get=10,
        s3_put=3,
        log_bytes=8192,
        restores=1,
        bucket_bytes_out=2**28,
    )
    dollars = per_million_pulls(usage, ARM_512)
    assert dollars["snapstart_restore"] == pytest.approx(69.8999, rel=1e-12)
    assert dollars["total"] == pytest.approx(101.914601265625, rel=1e-12)
    assert dollars["transfer_out"] == pytest.approx(22500.0, rel=1e-12)


def test_memory_and_architecture_set_compute_and_restore() -> None:
    # 1024 MB x86_64: 0.120 s x 1 GB x $0.0000166667 = $0.000002000004 -> $2.0000040.
    # Restore: 1 GB x $0.0001397998 -> $139.7998.
    usage = PullUsage(requests=1, billed_ms=120, s3_get=0, s3_put=0, log_bytes=0, restores=1)
    dollars = per_million_pulls(usage, Function(1024, "x86_64"))
    assert dollars["lambda_compute"] == pytest.approx(2.000004, rel=1e-12)
    assert dollars["snapstart_restore"] == pytest.approx(139.7998, rel=1e-12)
    assert dollars["total"] == pytest.approx(1.00 + 0.20 + 2.000004 + 139.7998, rel=1e-12)


def test_other_prices_are_used_when_given() -> None:
    prices = {key: 0.0 for key in PRICE_BY_KEY} | {"s3_put": 0.01, "logs_ingested": 2.0}
    # 2 PUTs x $0.01 = $0.02 a pull -> $20,000; 2^30 bytes x $2/GB -> $2,000,000.
    usage = PullUsage(requests=5, billed_ms=9, s3_get=4, s3_put=2, log_bytes=2**30)
    dollars = per_million_pulls(usage, ARM_512, prices)
    assert dollars["s3_requests"] == pytest.approx(20000.0)
    assert dollars["logs"] == pytest.approx(2000000.0)
    assert dollars["total"] == pytest.approx(2020000.0)


def test_items_are_the_keys_of_the_total() -> None:
    dollars = per_million_pulls(PullUsage(1, 1, 1, 1, 1, 1, 1), ARM_512)
    assert [key for key, _label in ITEMS] + ["total", "transfer_out"] == list(dollars)
    assert dollars["total"] == pytest.approx(sum(dollars[key] for key, _ in ITEMS))


def test_an_unknown_architecture_has_no_price() -> None:
    with pytest.raises(KeyError):
        per_million_pulls(PullUsage(1, 1, 0, 0, 0), Function(512, "riscv64"))


def test_billed_ms_rounds_each_invocation_up() -> None:
    # 0.3 -> 1, 415.1 -> 416, 2.0 -> 2, 0.0 -> 1 (the minimum): 420, not ceil(417.4) = 418.
    assert billed_ms([0.3, 415.1, 2.0, 0.0]) == 420
    assert billed_ms([]) == 0


@pytest.mark.parametrize(
    ("method", "target", "tier"),
    [
        ("GET", "/bench-001/blobs/sha256/ab", "get"),
        ("HEAD", "/bench-001/blobs/sha256/ab", "get"),
        ("GET", "/bench-001/blobs/sha256/ab?X-Amz-Signature=00&X-Amz-Expires=3600", "get"),
        ("PUT", "/bench-001/tags/upstream/r/x/1.json", "put"),
        ("PUT", "/bench-001/uploads/x?partNumber=1&uploadId=u", "put"),
        ("POST", "/bench-001/uploads/x?uploads", "put"),
        ("GET", "/bench-001?list-type=2&prefix=", "put"),
        ("GET", "/bench-001?uploads", "put"),
        ("GET", "/bench-001/", "put"),
        ("GET", "/bench-001/uploads/x?uploadId=u", "put"),
        ("DELETE", "/bench-001/uploads/x", "free"),
        ("delete", "/bench-001", "free"),
        ("OPTIONS", "/bench-001/blobs/x", "get"),
    ],
)
def test_s3_requests_by_price_tier(method: str, target: str, tier: str) -> None:
    assert s3_tier(method, target) == tier


def test_snapstart_cache_is_a_monthly_cost() -> None:
    # 0.5 GB x 30 days x 86,400 s x $0.0000015046 = $1.9499616.
    assert snapstart_cache_per_month(ARM_512) == pytest.approx(1.9499616, rel=1e-12)


def test_function_from_a_template(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        "Globals:\n  Function:\n    MemorySize: 1536\n    Architectures: [x86_64]\n"
        "    Layers:\n      - !Ref Layer\n"
        "Resources:\n  RegistryFunction:\n    Type: AWS::Serverless::Function\n"
        "    Properties:\n      CodeUri: !Sub '${AWS::StackName}'\n"
    )
    assert function_from_template(template) == Function(1536, "x86_64")


def test_a_function_s_own_settings_win(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        "Globals:\n  Function:\n    MemorySize: 1536\n    Architectures: [x86_64]\n"
        "Resources:\n  RegistryFunction:\n    Properties:\n"
        "      MemorySize: 256\n      Architectures: [arm64]\n"
    )
    assert function_from_template(template) == Function(256, "arm64")


def test_lambda_defaults_without_settings(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text("Resources:\n  RegistryFunction:\n    Properties: {}\n")
    assert function_from_template(template) == Function(128, "x86_64")


def test_the_project_template_has_a_priced_function() -> None:
    function = function_from_template(ROOT / "template.yaml")
    assert function.memory_mb >= 128
    assert f"lambda_gb_second_{function.architecture}" in PRICE_BY_KEY
