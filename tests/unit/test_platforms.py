"""Platform normalisation, attestation detection and wrapper-variant matching."""

import pytest

from ociwrap.image.documents import Descriptor
from ociwrap.image.platforms import (
    Platform,
    compatible,
    is_attestation,
    match,
    normalize,
    plan_wrappers,
    select,
)
from ociwrap.runtime.errors import RegistryError


def entry(os: str, arch: str, variant: str | None = None, **extra: object) -> dict:
    platform: dict = {"architecture": arch, "os": os}
    if variant is not None:
        platform["variant"] = variant
    platform.update(extra)
    return {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + (f"{os}{arch}{variant or ''}".encode().hex() * 8)[:64],
        "size": 1000,
        "platform": platform,
    }


ATTESTATION = {
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:" + "a" * 64,
    "size": 840,
    "annotations": {
        "vnd.docker.reference.digest": "sha256:" + "b" * 64,
        "vnd.docker.reference.type": "attestation-manifest",
    },
    "platform": {"architecture": "unknown", "os": "unknown"},
}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (("linux", "x86_64", ""), ("linux", "amd64", "")),
        (("linux", "x86-64", ""), ("linux", "amd64", "")),
        (("linux", "amd64", "v1"), ("linux", "amd64", "")),
        (("linux", "amd64", "v3"), ("linux", "amd64", "v3")),
        (("linux", "aarch64", ""), ("linux", "arm64", "")),
        (("linux", "arm64", "v8"), ("linux", "arm64", "")),
        (("linux", "arm64", "8"), ("linux", "arm64", "")),
        (("linux", "arm64", "v8.0"), ("linux", "arm64", "")),
        (("linux", "arm64", "9"), ("linux", "arm64", "v9")),
        (("linux", "arm64", "9.0"), ("linux", "arm64", "v9")),
        (("linux", "arm64", "v9.0"), ("linux", "arm64", "v9")),
        (("linux", "arm64", "v9.2"), ("linux", "arm64", "v9.2")),
        (("linux", "aarch64", "V8"), ("linux", "arm64", "")),
        (("linux", "armhf", ""), ("linux", "arm", "v7")),
        (("linux", "armel", ""), ("linux", "arm", "v6")),
        (("linux", "arm", ""), ("linux", "arm", "v7")),
        (("linux", "arm", "6"), ("linux", "arm", "v6")),
        (("linux", "arm", "5"), ("linux", "arm", "v5")),
        (("linux", "arm", "7"), ("linux", "arm", "v7")),
        (("linux", "arm", "8"), ("linux", "arm", "v8")),
        (("linux", "arm", "v6"), ("linux", "arm", "v6")),
        (("linux", "armhf", "v6"), ("linux", "arm", "v7")),
        (("linux", "amd64", "v2"), ("linux", "amd64", "v2")),
        (("linux", "i386", "v1"), ("linux", "386", "")),
        (("linux", "i386", ""), ("linux", "386", "")),
        (("MacOS", "ARM64", ""), ("darwin", "arm64", "")),
        (("linux", "s390x", ""), ("linux", "s390x", "")),
    ],
)
def test_normalize_follows_containerd(raw, expected):
    got = normalize(Platform(*raw))
    assert (got.os, got.architecture, got.variant) == expected


def test_from_descriptor_reads_every_field():
    desc = entry("windows", "amd64", **{"os.version": "10.0.20348.2227", "os.features": ["win32k"]})
    assert Platform.from_descriptor(desc) == Platform(
        "windows", "amd64", "", "10.0.20348.2227", ("win32k",)
    )
    assert Platform.from_descriptor({"digest": "sha256:" + "c" * 64}) == Platform("", "")
    assert str(Platform("linux", "arm", "v7")) == "linux/arm/v7"


def test_attestations_are_recognised_both_ways():
    assert is_attestation(ATTESTATION)
    assert is_attestation({"platform": {"os": "unknown", "architecture": "unknown"}})
    assert is_attestation({"annotations": {"vnd.docker.reference.type": "attestation-manifest"}})
    assert not is_attestation(entry("linux", "amd64"))


def test_exact_match_is_preferred_over_fallbacks():
    candidates = [entry("linux", "arm", "v6"), entry("linux", "arm", "v7")]
    assert match(Platform("linux", "arm", "v7"), candidates) is candidates[1]


@pytest.mark.parametrize(
    ("wanted", "offered", "chosen"),
    [
        (("linux", "amd64"), [("linux", "x86_64")], 0),
        (("linux", "x86_64"), [("linux", "arm64"), ("linux", "amd64")], 1),
        (("linux", "arm64"), [("linux", "aarch64")], 0),
        (("linux", "arm64", "v8"), [("linux", "arm64")], 0),
        (("linux", "arm64"), [("linux", "arm64", "v8")], 0),
        (("linux", "arm"), [("linux", "arm", "v7")], 0),
        (("linux", "arm", "v7"), [("linux", "arm")], 0),
        (("linux", "arm", "v7"), [("linux", "arm", "v5"), ("linux", "arm", "v6")], 1),
        (("linux", "arm", "v7"), [("linux", "arm", "v5")], 0),
        (("linux", "arm", "v8"), [("linux", "arm", "v7")], 0),
        (("linux", "arm64", "v8.2"), [("linux", "arm64")], 0),
        (("linux", "arm64", "v9"), [("linux", "arm64", "v8.4"), ("linux", "arm64")], 0),
        (("linux", "amd64", "v3"), [("linux", "amd64")], 0),
        (("linux", "amd64", "v3"), [("linux", "amd64"), ("linux", "amd64", "v2")], 1),
    ],
)
def test_match_normalises_and_falls_back_within_an_architecture(wanted, offered, chosen):
    candidates = [ATTESTATION] + [entry(*platform) for platform in offered]
    assert match(Platform(*wanted), candidates) is candidates[chosen + 1]


@pytest.mark.parametrize(
    ("wanted", "offered"),
    [
        (("linux", "arm", "v6"), [("linux", "arm", "v7"), ("linux", "arm")]),
        (("linux", "arm64"), [("linux", "arm64", "v8.2")]),
        (("linux", "arm64"), [("linux", "arm", "v7")]),
        (("linux", "amd64"), [("linux", "386")]),
        (("linux", "amd64"), [("linux", "amd64", "v2")]),
        (("linux", "amd64"), [("windows", "amd64")]),
        (("linux", "s390x"), [("linux", "ppc64le")]),
    ],
)
def test_match_refuses_what_cannot_run(wanted, offered):
    assert match(Platform(*wanted), [entry(*platform) for platform in offered]) is None


def test_match_ignores_attestations_and_entries_without_platform():
    bare = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "x", "size": 1}
    assert match(Platform("unknown", "unknown"), [ATTESTATION, bare]) is None
    assert match(Platform("", ""), [bare]) is None


def test_windows_needs_the_same_build():
    ltsc2022 = entry("windows", "amd64", **{"os.version": "10.0.20348.2227"})
    ltsc2019 = entry("windows", "amd64", **{"os.version": "10.0.17763.5329"})
    wanted = Platform("windows", "amd64", os_version="10.0.20348.1000")
    assert match(wanted, [ltsc2019, ltsc2022]) is ltsc2022
    assert match(wanted, [ltsc2019]) is None


def test_compatible_ladders():
    def spelled(platform):
        return [str(p) for p in compatible(platform)]

    assert spelled(Platform("linux", "arm", "v7")) == [
        "linux/arm/v7",
        "linux/arm/v6",
        "linux/arm/v5",
    ]
    assert spelled(Platform("linux", "arm64", "v8.2")) == [
        "linux/arm64/v8.2",
        "linux/arm64/v8.1",
        "linux/arm64",
    ]
    assert spelled(Platform("linux", "arm64", "v9.1"))[:3] == [
        "linux/arm64/v9.1",
        "linux/arm64/v9",
        "linux/arm64/v8.6",
    ]
    assert spelled(Platform("linux", "amd64")) == ["linux/amd64"]
    assert spelled(Platform("linux", "riscv64")) == ["linux/riscv64"]


def test_normalize_keeps_os_version_and_features():
    platform = Platform("Windows", "x86_64", "v1", "10.0.17763.5329", ("win32k",))
    assert normalize(platform) == Platform("windows", "amd64", "", "10.0.17763.5329", ("win32k",))


def spelled(platform: Platform) -> list[str]:
    return [str(p) for p in compatible(platform)]


@pytest.mark.parametrize(
    ("platform", "ladder"),
    [
        (("linux", "amd64", "v3"), ["linux/amd64/v3", "linux/amd64/v2", "linux/amd64"]),
        (("linux", "amd64", "v2"), ["linux/amd64/v2", "linux/amd64"]),
        (
            ("linux", "x86_64", "v4"),
            ["linux/amd64/v4", "linux/amd64/v3", "linux/amd64/v2", "linux/amd64"],
        ),
        (("linux", "amd64", "v10"), ["linux/amd64/v10"]),
        (("linux", "arm", "v8"), ["linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]),
        (("linux", "arm", "v6"), ["linux/arm/v6", "linux/arm/v5"]),
        (("linux", "arm", "v5"), ["linux/arm/v5"]),
        (("linux", "arm64", ""), ["linux/arm64"]),
        (("linux", "arm64", "v8.1"), ["linux/arm64/v8.1", "linux/arm64"]),
        (("linux", "arm64", "v8x2"), ["linux/arm64/v8x2"]),
        (("linux", "arm64", "v7"), ["linux/arm64/v7"]),
        (
            ("linux", "arm64", "v9"),
            ["linux/arm64/v9"] + [f"linux/arm64/v8.{m}" for m in range(5, 0, -1)] + ["linux/arm64"],
        ),
        (
            ("linux", "arm64", "v9.1"),
            ["linux/arm64/v9.1", "linux/arm64/v9"]
            + [f"linux/arm64/v8.{m}" for m in range(6, 0, -1)]
            + ["linux/arm64"],
        ),
        (
            ("linux", "arm64", "v9.5"),
            [f"linux/arm64/v9.{m}" for m in range(5, 0, -1)]
            + ["linux/arm64/v9"]
            + [f"linux/arm64/v8.{m}" for m in range(9, 0, -1)]
            + ["linux/arm64"],
        ),
    ],
)
def test_variant_preference_orders(platform, ladder):
    assert spelled(Platform(*platform)) == ladder


def test_ladders_keep_os_version_and_features():
    windows = Platform("windows", "amd64", "v2", "10.0.17763.5329", ("win32k",))
    assert compatible(windows) == (
        Platform("windows", "amd64", "v2", "10.0.17763.5329", ("win32k",)),
        Platform("windows", "amd64", "", "10.0.17763.5329", ("win32k",)),
    )


@pytest.mark.parametrize("value", [None, "x", ["platform"], 3])
def test_only_objects_are_attestations(value):
    assert is_attestation(value) is False


def test_attestations_need_both_unknowns_or_the_annotation():
    assert not is_attestation({"platform": {"os": "unknown", "architecture": "amd64"}})
    assert not is_attestation({"platform": {"os": "linux", "architecture": "unknown"}})
    assert not is_attestation({"platform": "unknown/unknown"})
    assert not is_attestation({"annotations": {"vnd.docker.reference.type": "sbom"}})
    assert not is_attestation({"annotations": ["vnd.docker.reference.type"]})


def test_windows_without_a_build_on_either_side_matches():
    wanted = Platform("windows", "amd64", os_version="10.0.20348.1000")
    unversioned = entry("windows", "amd64")
    assert match(wanted, [unversioned]) is unversioned
    versioned = entry("windows", "amd64", **{"os.version": "10.0.17763.5329"})
    assert match(Platform("windows", "amd64"), [versioned]) is versioned


def test_os_version_matters_on_windows_only():
    linux = entry("linux", "amd64", **{"os.version": "6.1"})
    assert match(Platform("linux", "amd64", os_version="5.10"), [linux]) is linux


def test_entries_after_an_attestation_in_the_middle_are_candidates():
    amd64, arm64 = entry("linux", "amd64"), entry("linux", "arm64")
    assert match(Platform("linux", "arm64"), [amd64, ATTESTATION, arm64]) is arm64
    assert match(Platform("linux", "amd64"), [ATTESTATION, ATTESTATION, amd64]) is amd64


def test_the_first_of_equally_good_candidates_wins():
    first, second = entry("linux", "amd64"), entry("linux", "x86_64")
    assert match(Platform("linux", "amd64"), [first, second]) is first
    assert match(Platform("linux", "amd64"), [second, first]) is second


# -- plans: which wrapper goes on which base platform --------------------------------------


def descriptor(raw: dict) -> Descriptor:
    return Descriptor(raw["mediaType"], raw["digest"], raw["size"], raw)


BASE = [
    descriptor(entry("linux", "amd64")),
    descriptor(entry("linux", "arm64", "v8")),
    descriptor(entry("linux", "arm", "v7")),
]


def plan_platforms(base, wrapper):
    """The plan for one wrapper: (base entry, wrapper entry or None) in base order."""
    return [(entry, chosen) for entry, (chosen,) in plan_wrappers(base, [wrapper])]


def test_a_single_image_wrapper_serves_every_base_platform():
    assert plan_platforms(BASE, None) == [(base, None) for base in BASE]


def test_each_base_platform_takes_its_wrapper_variant():
    wrapper = [
        descriptor(entry("linux", "arm", "v6")),
        descriptor(entry("linux", "aarch64")),
        descriptor(entry("linux", "x86_64")),
    ]
    plan = plan_platforms(BASE, wrapper)
    assert plan == [(BASE[0], wrapper[2]), (BASE[1], wrapper[1]), (BASE[2], wrapper[0])]
    assert [id(chosen) for _, chosen in plan] == [id(wrapper[2]), id(wrapper[1]), id(wrapper[0])]


def test_base_platforms_without_a_wrapper_variant_are_left_out():
    wrapper = [descriptor(entry("linux", "arm64")), descriptor(ATTESTATION)]
    assert plan_platforms(BASE, wrapper) == [(BASE[1], wrapper[0])]


def test_no_platform_in_common_is_manifest_unknown():
    wrapper = [descriptor(entry("linux", "riscv64")), descriptor(entry("linux", "s390x"))]
    with pytest.raises(RegistryError) as caught:
        plan_platforms(BASE, wrapper)
    error = caught.value
    assert (error.code, error.status) == ("MANIFEST_UNKNOWN", 404)
    assert error.message == "no platform of the base image has a matching wrapper variant"
    assert error.detail == {
        "base": ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"],
        "wrapper": ["linux/riscv64", "linux/s390x"],
    }


def test_an_empty_base_has_no_plan():
    with pytest.raises(RegistryError) as caught:
        plan_platforms([], None)
    assert caught.value.detail == {"base": [], "wrapper": ["any"]}


def test_several_wrappers_keep_a_base_platform_only_if_each_has_a_variant():
    scripts = [descriptor(entry("linux", "amd64")), descriptor(entry("linux", "arm64"))]
    tools = [descriptor(entry("linux", "arm", "v5")), descriptor(entry("linux", "x86_64"))]
    plan = plan_wrappers(BASE, [scripts, None, tools])
    assert plan == [(BASE[0], [scripts[0], None, tools[1]])]
    with pytest.raises(RegistryError) as caught:
        plan_wrappers(BASE, [[descriptor(entry("linux", "arm", "v7"))], scripts])
    assert caught.value.detail == {
        "base": ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"],
        "wrapper": ["linux/arm/v7", "linux/amd64", "linux/arm64"],
    }


# -- choosing platforms by name -------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "chosen"),
    [
        (["linux/amd64"], [0]),
        (["linux/arm64/v8", "linux/amd64"], [0, 1]),
        (["linux/x86_64", "linux/aarch64", "linux/armhf"], [0, 1, 2]),
        (["linux/arm64"], [1]),
        (["linux/arm"], [2]),
        (["Linux/ARM/7", "linux/s390x"], [2]),
    ],
)
def test_select_chooses_by_canonical_spelling_in_index_order(wanted, chosen):
    assert select(BASE, wanted) == [BASE[n] for n in chosen]


@pytest.mark.parametrize("wanted", [["linux/arm/v6"], ["windows/amd64"], ["linux"], []])
def test_select_without_a_match_is_manifest_unknown(wanted):
    with pytest.raises(RegistryError) as caught:
        select(BASE, wanted)
    error = caught.value
    assert (error.code, error.status) == ("MANIFEST_UNKNOWN", 404)
    assert error.message == "none of the requested platforms is one of the base image's"
    assert error.detail == {
        "requested": wanted,
        "base": ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"],
    }
