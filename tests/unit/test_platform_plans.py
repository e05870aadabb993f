"""Which base platforms a wrapped index has (`ociwrap.image.platforms.plan_wrappers`), for
multi-platform bases and wrappers as upstreams send them.
"""

from __future__ import annotations

from compose_fixtures import error_of, plan_platforms
from image_documents import SCHEMA1, WRAPPER_MANIFEST, digest_of, multi_base_index, wrapper_index


def test_plan_matches_spellings_and_drops_attestations():
    base = multi_base_index()
    wrapper = wrapper_index(("x86_64", None), ("aarch64", None), ("arm", None))
    plan = plan_platforms(base, wrapper)
    assert [(b["digest"], w["digest"]) for b, w in plan] == [
        (digest_of("base-amd64"), digest_of("wrapper-x86_64-None")),
        (digest_of("base-arm64"), digest_of("wrapper-aarch64-None")),
        (digest_of("base-arm"), digest_of("wrapper-arm-None")),
    ]


def test_plan_arm_fallback_and_missing_variant_left_out():
    plan = plan_platforms(multi_base_index(), wrapper_index(("arm", "v6"), ("arm64", "v8")))
    assert [(b["platform"]["architecture"], w["digest"]) for b, w in plan] == [
        ("arm64", digest_of("wrapper-arm64-v8")),
        ("arm", digest_of("wrapper-arm-v6")),
    ]


def test_single_platform_wrapper_serves_every_base_platform():
    plan = plan_platforms(multi_base_index(), WRAPPER_MANIFEST)
    assert [b["platform"]["architecture"] for b, _ in plan] == ["amd64", "arm64", "arm", "s390x"]
    assert all(w is None for _, w in plan)


def test_no_platform_left_is_manifest_unknown():
    err = error_of(plan_platforms, multi_base_index(), wrapper_index(("riscv64", None)))
    assert (err.code, err.status) == ("MANIFEST_UNKNOWN", 404)
    assert err.message == "no platform of the base image has a matching wrapper variant"
    assert err.detail == {
        "base": ["linux/amd64", "linux/arm64/v8", "linux/arm/v7", "linux/s390x"],
        "wrapper": ["linux/riscv64"],
    }


def test_plan_refuses_a_schema1_wrapper():
    err = error_of(plan_platforms, multi_base_index(), SCHEMA1)
    assert err.message == "invalid upstream image format"
