"""Platforms of index entries: normalisation and choosing the wrapper for a base platform.

A wrapped multi-platform image pairs every platform of the base index with a
variant of the wrapper. Registries spell the same platform several ways
(`x86_64`, `aarch64`, `arm64/v8`, `arm` without a variant), so both sides are
normalised the way containerd's `platforms.Normalize` does before they are
compared; a mismatch in spelling must not drop a platform that clients would
happily run.

Matching follows containerd's `platforms.Only` within one architecture: an
arm/v7 base can take an arm/v6 or arm/v5 wrapper, an arm64/v8.2 base an
arm64/v8.1 one, amd64/v3 an amd64/v2 one. It deliberately does *not* follow
containerd across architectures (amd64 → 386, arm64 → arm): containerd picks an
image for a host kernel, whereas here the wrapper's executable must run inside
the base image, and many arm64 CPUs (AWS Graviton 3 and later, Apple silicon)
cannot execute 32-bit Arm code at all.

Pure functions over JSON dicts: no I/O and no knowledge of the host, so the
same inputs give the same choice in every process.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ociwrap.runtime.errors import manifest_unknown

if TYPE_CHECKING:
    from ociwrap.image.documents import Descriptor

REFERENCE_TYPE_ANNOTATION = "vnd.docker.reference.type"
ATTESTATION_REFERENCE_TYPE = "attestation-manifest"

#: Variants as registries spell them (`v5`…`v8`, `v8.2`, `v9.4`); ladders are built only
#: from these, so a hostile `v99999999999` costs no more than comparing it.
_ARM64_VARIANT = re.compile(r"v([89])(?:\.([0-9]))?")
_ARCH_VARIANT = re.compile(r"v([1-9])")

NO_PLATFORM = "no platform of the base image has a matching wrapper variant"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class Platform:
    """An OCI platform (`os`, `architecture`, `variant`, `os.version`, `os.features`).

    Values are kept as the upstream spelled them, so that a platform copied
    into a composed index is byte-for-byte the base's; call `normalize()`
    before comparing.
    """

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    features: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Platform:
        """Read a platform object, or an image config (it carries the same keys at top level)."""
        return platform_from_dict(data)

    @classmethod
    def from_descriptor(cls, descriptor: Mapping[str, Any]) -> Platform:
        """The platform of an index entry; empty fields when the entry declares none."""
        platform = descriptor.get("platform") if isinstance(descriptor, Mapping) else None
        return cls.from_dict(platform)

    def __str__(self) -> str:
        """`os/architecture[/variant]`, the form people type and error details show."""
        parts = [self.os or "unknown", self.architecture or "unknown"]
        if self.variant:
            parts.append(self.variant)
        return "/".join(parts)


def platform_from_dict(data: Mapping[str, Any] | None) -> Platform:
    """A platform from untrusted JSON: text fields only, anything else empty."""
    if not isinstance(data, Mapping):
        data = {}
    features = data.get("os.features")
    return Platform(
        os=_text(data.get("os")),
        architecture=_text(data.get("architecture")),
        variant=_text(data.get("variant")),
        os_version=_text(data.get("os.version")),
        features=tuple(f for f in features if isinstance(f, str))
        if isinstance(features, list)
        else (),
    )


def normalize_os(os_name: str) -> str:
    """Lower-case; `macos` is `darwin`. An empty OS stays empty (there is no host to default to)."""
    os_name = os_name.lower()
    return "darwin" if os_name == "macos" else os_name


def normalize_arch(architecture: str, variant: str) -> tuple[str, str]:
    """containerd's architecture and variant aliases.

    `x86_64`/`x86-64` → `amd64` (variant `v1` is the default and is dropped);
    `aarch64` → `arm64` (`8`, `v8`, `v8.0` are the default and dropped; `9`,
    `9.0`, `v9.0` → `v9`); `i386` → `386`; `armhf` → arm/v7; `armel` → arm/v6;
    `arm` without a variant (or `7`) is arm/v7 and bare `5`, `6`, `8` gain a `v`.
    """
    architecture, variant = architecture.lower(), variant.lower()
    if architecture == "i386":
        return "386", ""
    if architecture in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant == "v1" else variant
    if architecture in ("aarch64", "arm64"):
        if variant in ("8", "v8", "v8.0"):
            variant = ""
        elif variant in ("9", "9.0", "v9.0"):
            variant = "v9"
        return "arm64", variant
    if architecture == "armhf":
        return "arm", "v7"
    if architecture == "armel":
        return "arm", "v6"
    if architecture == "arm":
        if variant in ("", "7"):
            variant = "v7"
        elif variant in ("5", "6", "8"):
            variant = "v" + variant
        return "arm", variant
    return architecture, variant


def normalize(platform: Platform) -> Platform:
    """The platform with OS, architecture and variant in canonical spelling."""
    architecture, variant = normalize_arch(platform.architecture, platform.variant)
    return Platform(
        os=normalize_os(platform.os),
        architecture=architecture,
        variant=variant,
        os_version=platform.os_version,
        features=platform.features,
    )


def _with_variant(platform: Platform, variant: str) -> Platform:
    return normalize(
        Platform(
            platform.os, platform.architecture, variant, platform.os_version, platform.features
        )
    )


def compatible(platform: Platform) -> tuple[Platform, ...]:
    """Normalised platforms whose binaries run on `platform`, best first.

    The same ladders as containerd's `platforms.Only`, limited to the same
    architecture (see the module docstring for why).
    """
    wanted = normalize(platform)
    ladder = [wanted]
    if wanted.architecture == "amd64":
        found = _ARCH_VARIANT.fullmatch(wanted.variant)
        if found:
            ladder += [_with_variant(wanted, f"v{n}") for n in range(int(found[1]) - 1, 0, -1)]
    elif wanted.architecture == "arm":
        found = _ARCH_VARIANT.fullmatch(wanted.variant)
        if found:
            ladder += [_with_variant(wanted, f"v{n}") for n in range(int(found[1]) - 1, 4, -1)]
    elif wanted.architecture == "arm64":
        found = _ARM64_VARIANT.fullmatch(wanted.variant)
        if found:
            major, minor = int(found[1]), int(found[2] or 0)
            ladder = []
            if major == 9:
                ladder += [_with_variant(wanted, f"v9.{m}") for m in range(minor, -1, -1)]
                # Armv9.x implements Armv8.(x+5).
                minor = min(minor + 5, 9)
            # `v8.0` and `v9.0` normalise to the bare defaults ("" and `v9`).
            ladder += [_with_variant(wanted, f"v8.{m}") for m in range(minor, -1, -1)]
    unique: list[Platform] = []
    for step in ladder:
        if step not in unique:
            unique.append(step)
    return tuple(unique)


def is_attestation(descriptor: Mapping[str, Any]) -> bool:
    """An index entry that holds build attestations (provenance, SBOM), not a runnable image.

    BuildKit marks them both ways: platform `unknown/unknown` and the
    annotation `vnd.docker.reference.type: attestation-manifest`.
    """
    if not isinstance(descriptor, Mapping):
        return False
    platform = descriptor.get("platform")
    if (
        isinstance(platform, Mapping)
        and platform.get("os") == "unknown"
        and platform.get("architecture") == "unknown"
    ):
        return True
    annotations = descriptor.get("annotations")
    return (
        isinstance(annotations, Mapping)
        and annotations.get(REFERENCE_TYPE_ANNOTATION) == ATTESTATION_REFERENCE_TYPE
    )


def _os_version_compatible(wanted: Platform, candidate: Platform) -> bool:
    """Windows images only run on the same build (`major.minor.build`); others ignore it."""
    if wanted.os != "windows" or not wanted.os_version or not candidate.os_version:
        return True
    return wanted.os_version.split(".")[:3] == candidate.os_version.split(".")[:3]


def match(wanted: Platform, candidates: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The candidate descriptor that best serves `wanted`, or None.

    An exact match after normalisation wins; then the variant ladder of
    `compatible`. Among equally good candidates the first in index order wins,
    so the choice is stable. Attestations and entries without a `platform` are
    never chosen.
    """
    want = normalize(wanted)
    if not want.architecture:
        return None
    usable = [
        (candidate, normalize(Platform.from_descriptor(candidate)))
        for candidate in candidates
        if isinstance(candidate, Mapping)
        and isinstance(candidate.get("platform"), Mapping)
        and not is_attestation(candidate)
    ]
    for step in compatible(want):
        for candidate, platform in usable:
            if (
                (platform.os, platform.architecture, platform.variant)
                == (step.os, step.architecture, step.variant)
            ) and _os_version_compatible(want, platform):
                return candidate
    return None


def plan_wrappers(
    base: Sequence[Descriptor], wrappers: Sequence[Sequence[Descriptor] | None]
) -> list[tuple[Descriptor, list[Descriptor | None]]]:
    """Pair each base platform with the manifest of each wrapper that will be stacked on it.

    `base` are the runnable entries of the base index (a single-platform base is an index
    of one); each of `wrappers` likewise, or None for a single-image wrapper, which serves
    every base platform (a wrapper is typically a script). With a wrapper index, each base
    platform takes the variant `match` chooses; a base platform stays only if every
    wrapper has a variant for it. Returns `(base entry, [wrapper entry or None, ...])` in
    base order.
    """
    plan: list[tuple[Descriptor, list[Descriptor | None]]] = []
    for entry in base:
        chosen: list[Descriptor | None] = []
        for candidates in wrappers:
            if candidates is None:
                chosen.append(None)
                continue
            by_raw = {id(candidate.raw): candidate for candidate in candidates}
            found = match(entry.platform, [candidate.raw for candidate in candidates])
            if found is None:
                break
            chosen.append(by_raw[id(found)])
        else:
            plan.append((entry, chosen))
    if not plan:
        raise manifest_unknown(
            NO_PLATFORM,
            detail={
                "base": [str(entry.platform) for entry in base],
                "wrapper": [
                    str(entry.platform) for candidates in wrappers for entry in candidates or []
                ]
                or ["any"],
            },
        )
    return plan


def select(entries: Sequence[Descriptor], wanted: Sequence[str]) -> list[Descriptor]:
    """The entries whose platform is one of `wanted` (`os/architecture[/variant]`),
    compared in canonical spelling, in index order."""
    wished = set()
    for text in wanted:
        os_name, _, rest = text.partition("/")
        architecture, _, variant = rest.partition("/")
        platform = normalize(Platform(os_name, architecture, variant))
        wished.add((platform.os, platform.architecture, platform.variant))
    chosen = []
    for entry in entries:
        platform = normalize(entry.platform)
        if (platform.os, platform.architecture, platform.variant) in wished:
            chosen.append(entry)
    if not chosen:
        raise manifest_unknown(
            "none of the requested platforms is one of the base image's",
            detail={"requested": list(wanted), "base": [str(e.platform) for e in entries]},
        )
    return chosen
