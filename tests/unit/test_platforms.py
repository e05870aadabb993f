"""Platform normalisation, attestation detection and wrapper-variant matching."""

import pytest

from ociwrap.platforms import Platform, compatible, is_attestation, match, normalize


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
        (("linux", "armhf", ""), ("linux", "arm", "v7")),
        (("linux", "armel", ""), ("linux", "arm", "v6")),
        (("linux", "arm", ""), ("linux", "arm", "v7")),
        (("linux", "arm", "6"), ("linux", "arm", "v6")),
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
