"""The wrapped image's config: the base config, run through the wrapper (pure).

The wrapper's executable (its `org.goci.wrapper` label) goes in front of the
base entrypoint; layers, diff_ids and history are the base's followed by the
wrapper's; everything else stays the base's, so the wrapped image behaves as
the base does. JSON in, JSON out: no I/O, no clock.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from ociwrap.documents import Image, ImageManifest, string_list
from ociwrap.errors import RegistryError, manifest_invalid

#: Label of the wrapper image naming the executable that becomes the entrypoint.
WRAPPER_LABEL = "org.goci.wrapper"

#: Error messages users see, worded as Goci Wrapper words them.
MISSING_LABEL = f"wrapper image missing '{WRAPPER_LABEL}' label"
NO_LAYERS = "wrapper image has no layers"

#: Docker and containerd refuse images with more layers than this (overlayfs' limit).
MAX_LAYERS = 127

Json = dict[str, Any]


def check_pair(base: ImageManifest, wrapper: ImageManifest) -> None:
    """A wrapper that brings at least one layer, and a result clients can unpack."""
    if not wrapper.layers:
        raise manifest_invalid(NO_LAYERS)
    count = len(base.layers) + len(wrapper.layers)
    if count > MAX_LAYERS:
        raise manifest_invalid(
            f"the wrapped image would have {count} layers; at most {MAX_LAYERS} are allowed",
            detail={"base": len(base.layers), "wrapper": len(wrapper.layers)},
        )


def wrapper_entrypoint(labels: Mapping[str, Any] | None) -> str:
    """The executable the wrapper image declares in its `org.goci.wrapper` label.

    The label is the whole contract between a wrapper image and this service:
    without it there is nothing to put in front of the base entrypoint.
    """
    value = labels.get(WRAPPER_LABEL) if isinstance(labels, Mapping) else None
    if not isinstance(value, str) or not value.strip():
        raise RegistryError("MANIFEST_INVALID", MISSING_LABEL)
    return value


def _env_name(entry: str) -> str:
    return entry.split("=", 1)[0]


def merge_env(base_env: Sequence[str], wrapper_env: Sequence[str]) -> list[str]:
    """Base variables in base order; the wrapper's override same-named ones in place
    and new ones follow in wrapper order. `PATH` is the exception: the base's is kept,
    because the base's programs (its entrypoint, its `Cmd`) must still be found; the
    wrapper's `PATH` is used only when the base has none.
    """
    merged = list(base_env)
    positions: dict[str, list[int]] = {}
    for index, entry in enumerate(merged):
        positions.setdefault(_env_name(entry), []).append(index)
    base_has_path = "PATH" in positions
    for entry in wrapper_env:
        name = _env_name(entry)
        if name == "PATH" and base_has_path:
            continue
        if name in positions:
            for index in positions[name]:
                merged[index] = entry
        else:
            positions[name] = [len(merged)]
            merged.append(entry)
    return merged


def _merge_labels(
    base: Mapping[str, Any] | None, wrapper: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """Base labels in base order, wrapper labels override or follow; None when neither has any."""
    if not base and not wrapper:
        return None
    merged = dict(base or {})
    merged.update(wrapper or {})
    return merged


def _history(side: str, config: Mapping[str, Any], layer_count: int) -> list[Json]:
    """The side's history if it describes its layers, else one synthetic entry per layer.

    Clients (`docker history`, image scanners) pair history entries that are not
    `empty_layer` with layers by position, so the composed history must have
    exactly one such entry per layer. A history that is missing, malformed or
    counts a different number of layers cannot be paired and is replaced as a
    whole: a partial repair would attribute commands to the wrong layers.
    """
    history = config.get("history")
    if isinstance(history, list) and all(isinstance(entry, Mapping) for entry in history):
        filled = sum(1 for entry in history if entry.get("empty_layer") is not True)
        if filled == layer_count:
            return [copy.deepcopy(dict(entry)) for entry in history]
    created = _created(config)
    synthetic: list[Json] = []
    for number in range(1, layer_count + 1):
        entry: Json = {}
        if created:
            entry["created"] = created
        entry["created_by"] = f"ociwrap: {side} layer"
        entry["comment"] = (
            f"layer {number} of {layer_count} of the {side} image, "
            "whose history was missing or did not match its layers"
        )
        synthetic.append(entry)
    return synthetic


def _created(config: Mapping[str, Any]) -> str | None:
    value = config.get("created")
    return value if isinstance(value, str) and value else None


def compose_config(base: Image, wrapper: Image) -> Json:
    """The wrapped image's config: the base config, run through the wrapper.

    * `Entrypoint` = [wrapper label] + base `Entrypoint`; `Cmd` untouched (even
      null), so the wrapper receives exactly what the base would have run.
    * `Env` merged by `merge_env`; `Labels` merged with the wrapper winning.
    * Everything else (`User`, `WorkingDir`, ports, volumes, `StopSignal`,
      `created`, `os`, `architecture`, `variant`, `os.version`, `author`) is
      the base's: the wrapped image must behave as the base does.
    * `rootfs.diff_ids` = base + wrapper, matching the manifest's layer order,
      and `history` extended likewise, plus one `empty_layer` entry recording
      the wrap. Its timestamp is the base's `created`, never the clock, so the
      digest does not change between pulls.
    """
    check_pair(base.manifest, wrapper.manifest)
    label = wrapper_entrypoint(wrapper.config.labels)
    base_inner = base.config.container
    wrapper_inner = wrapper.config.container

    composed: Json = copy.deepcopy(dict(base.config.document))
    inner: Json = copy.deepcopy(dict(base_inner))
    inner["Entrypoint"] = [label, *string_list("base", "Entrypoint", base_inner.get("Entrypoint"))]

    wrapper_env = string_list("wrapper", "Env", wrapper_inner.get("Env"))
    if wrapper_env:
        inner["Env"] = merge_env(string_list("base", "Env", base_inner.get("Env")), wrapper_env)

    labels = _merge_labels(base_inner.get("Labels"), wrapper_inner.get("Labels"))
    if labels is not None:
        inner["Labels"] = copy.deepcopy(labels)

    composed["config"] = inner
    composed["rootfs"] = {
        "type": "layers",
        "diff_ids": [*base.config.diff_ids, *wrapper.config.diff_ids],
    }

    history = _history("base", base.config.document, len(base.manifest.layers))
    history += _history("wrapper", wrapper.config.document, len(wrapper.manifest.layers))
    wrap_entry: Json = {}
    created = _created(base.config.document)
    if created:
        wrap_entry["created"] = created
    wrap_entry["created_by"] = f"ociwrap: entrypoint {label}"
    wrap_entry["empty_layer"] = True
    history.append(wrap_entry)
    composed["history"] = history
    return composed
