"""The wrapped image's config: the base config, run through the wrappers (pure).

Each wrapper's executable (its `org.goci.wrapper` label) goes in front of the
base entrypoint, the first wrapper first; layers, diff_ids and history are the
base's followed by each wrapper's; everything else stays the base's, so the
wrapped image behaves as the base does, except for what a container token's
overrides set. JSON in, JSON out: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ociwrap.image.documents import Image, ImageManifest
from ociwrap.image.jsondoc import copy_json
from ociwrap.image.recipes import Overrides
from ociwrap.runtime.errors import RegistryError, manifest_invalid

#: Label of the wrapper image naming the executable that becomes the entrypoint.
WRAPPER_LABEL = "org.goci.wrapper"

#: Error messages users see, worded as Goci Wrapper words them.
MISSING_LABEL = f"wrapper image missing '{WRAPPER_LABEL}' label"
NO_LAYERS = "wrapper image has no layers"

#: Docker and containerd refuse images with more layers than this (overlayfs' limit).
MAX_LAYERS = 127

Json = dict[str, Any]
#: Keys of the config, and of its container config, that composition always writes anew.
_REMADE = frozenset({"config", "rootfs", "history"})
_REMADE_INNER = frozenset({"Entrypoint", "Labels"})


def check_pair(base: ImageManifest, wrappers: Sequence[ImageManifest]) -> None:
    """Wrappers that each bring at least one layer, and a result clients can unpack."""
    if any(not wrapper.layers for wrapper in wrappers):
        raise manifest_invalid(NO_LAYERS)
    count = len(base.layers) + sum(len(wrapper.layers) for wrapper in wrappers)
    if count > MAX_LAYERS:
        raise manifest_invalid(
            f"the wrapped image would have {count} layers; at most {MAX_LAYERS} are allowed",
            detail={
                "base": len(base.layers),
                "wrapper": sum(len(wrapper.layers) for wrapper in wrappers),
            },
        )


def as_wrappers(wrappers: Image | Sequence[Image]) -> list[Image]:
    """One wrapper or several, as a list."""
    return [wrappers] if isinstance(wrappers, Image) else list(wrappers)


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

    A name set several times takes its last value (every base entry of that name gets
    it; a new name keeps the place of its first entry). One pass over each list, so
    tens of thousands of entries, or of entries with one name, cost no more than reading them.
    """
    base_names = {_env_name(entry) for entry in base_env}
    keep_path = "PATH" in base_names
    last: dict[str, str] = {}
    for entry in wrapper_env:
        name = _env_name(entry)
        if not (name == "PATH" and keep_path):
            last[name] = entry
    merged = [last.get(_env_name(entry), entry) for entry in base_env]
    merged += [entry for name, entry in last.items() if name not in base_names]
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
            return [copy_json(entry) for entry in history]
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


def compose_config(
    base: Image, wrappers: Image | Sequence[Image], overrides: Overrides | None = None
) -> Json:
    """The wrapped image's config: the base config, run through the wrappers.

    * `Entrypoint` = [label of wrapper 1, label of wrapper 2, ...] + base
      `Entrypoint`; `Cmd` untouched (even null), so each wrapper hands what it
      receives to the next, and the last to what the base would have run.
    * `Env` merged by `merge_env`, wrapper by wrapper; `Labels` merged with the
      later wrapper winning.
    * Everything else (`User`, `WorkingDir`, ports, volumes, `StopSignal`,
      `created`, `os`, `architecture`, `variant`, `os.version`, `author`) is
      the base's: the wrapped image must behave as the base does.
    * `rootfs.diff_ids` = base + wrappers, matching the manifest's layer order,
      and `history` extended likewise, plus one `empty_layer` entry recording
      the wrap. Its timestamp is the base's `created`, never the clock, so the
      digest does not change between pulls.
    * `overrides` (container tokens) are applied last: `entrypoint` replaces the
      chain, `cmd` the command, `env` sets variables, `labels` add or replace,
      `workingDir` and `user` replace; another `empty_layer` entry records them.
    """
    chain = as_wrappers(wrappers)
    check_pair(base.manifest, [wrapper.manifest for wrapper in chain])
    labels_chain = [wrapper_entrypoint(wrapper.config.labels) for wrapper in chain]
    base_inner = base.config.container

    # Copied without what is made anew (so big histories or label sets are not copied only
    # to be replaced), keeping each key's place: the bytes follow the base's key order.
    composed: Json = {
        key: None if key in _REMADE else copy_json(value)
        for key, value in base.config.document.items()
    }
    inner: Json = {
        key: None if key in _REMADE_INNER else copy_json(value) for key, value in base_inner.items()
    }
    inner["Entrypoint"] = [*labels_chain, *base.config.entrypoint]

    env = list(base.config.env)
    # Every wrapper has labels (its `org.goci.wrapper` label at least): later ones win.
    labels = dict(base.config.labels)
    for wrapper in chain:
        if wrapper.config.env:
            env = merge_env(env, wrapper.config.env)
            inner["Env"] = env
        labels.update(wrapper.config.labels)
    inner["Labels"] = copy_json(labels)

    composed["config"] = inner
    composed["rootfs"] = {
        "type": "layers",
        "diff_ids": [
            *base.config.diff_ids,
            *(diff_id for wrapper in chain for diff_id in wrapper.config.diff_ids),
        ],
    }

    history = _history("base", base.config.document, len(base.manifest.layers))
    for wrapper in chain:
        history += _history("wrapper", wrapper.config.document, len(wrapper.manifest.layers))
    created = _created(base.config.document)
    history.append(_entry(created, f"ociwrap: entrypoint {' '.join(labels_chain)}"))
    if overrides is not None and not overrides.empty:
        apply_overrides(inner, overrides)
        history.append(_entry(created, f"ociwrap: overrides {', '.join(_named(overrides))}"))
    composed["history"] = history
    return composed


def _entry(created: str | None, created_by: str) -> Json:
    entry: Json = {}
    if created:
        entry["created"] = created
    entry["created_by"] = created_by
    entry["empty_layer"] = True
    return entry


def _named(overrides: Overrides) -> list[str]:
    fields = (
        ("entrypoint", overrides.entrypoint is not None),
        ("cmd", overrides.cmd is not None),
        ("env", bool(overrides.env)),
        ("labels", bool(overrides.labels)),
        ("workingDir", overrides.working_dir is not None),
        ("user", overrides.user is not None),
    )
    return [name for name, present in fields if present] or ["platforms"]


def apply_overrides(inner: Json, overrides: Overrides) -> None:
    """Set what a container token asks for on a container config, in place."""
    if overrides.entrypoint is not None:
        inner["Entrypoint"] = list(overrides.entrypoint)
    if overrides.cmd is not None:
        inner["Cmd"] = list(overrides.cmd)
    if overrides.env:
        current = inner.get("Env") or []
        env = [current] if isinstance(current, str) else list(current)
        wanted = {name: f"{name}={value}" for name, value in overrides.env}
        present = {_env_name(item) for item in env}
        env = [wanted.get(_env_name(item), item) for item in env]
        env += [entry for name, entry in wanted.items() if name not in present]
        inner["Env"] = env
    if overrides.labels:
        inner["Labels"] = {**(inner.get("Labels") or {}), **dict(overrides.labels)}
    if overrides.working_dir is not None:
        inner["WorkingDir"] = overrides.working_dir
    if overrides.user is not None:
        inner["User"] = overrides.user
