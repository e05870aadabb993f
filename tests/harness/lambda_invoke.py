"""Invoke a built handler as Lambda's Python runtime would: `python3.12 -S lambda_invoke.py`.

Run with the runtime's Python and `-S` (no site-packages of that installation), so that
nothing but the standard library and the three directories Lambda puts on `sys.path`, in
Lambda's order, can be imported: the function (`/var/task`), the layer (`/opt/python`)
and the runtime's own packages (`/var/runtime`: boto3, awslambdaric). A dependency the
layer lacks, or a layer package that shadows the runtime's, shows here.

    python3.12 -S lambda_invoke.py OUT.jsonl FUNCTION_DIR LAYER_DIR RUNTIME_DIR EVENT.json...

Before anything else it installs `loopback_only` (connections and name lookups beyond
loopback fail at once, nothing is sent), so sample events that name Docker Hub cannot
reach it. It writes one JSON line per event to OUT.jsonl (`event`, `statusCode`, `headers`,
`body`), then one line `{"origins": {module: directory}}` for the packages that matter
(stdout is the function's log, as in Lambda).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
#: Where each of these was imported from says whether the layer shadows the runtime.
WATCHED = (
    "app",
    "ociwrap",
    "aws_lambda_powertools",
    "requests",
    "urllib3",
    "cryptography",
    "bcrypt",
    "aws_xray_sdk.core",
    "boto3",
    "botocore",
    "s3transfer",
)


def _load_loopback_only() -> Any:
    spec = importlib.util.spec_from_file_location("loopback_only", HERE / "loopback_only.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _origin(name: str, roots: dict[str, Path]) -> str:
    module = sys.modules.get(name)
    if module is None:
        __import__(name)
        module = sys.modules[name]
    location = Path(getattr(module, "__file__", "") or "").resolve()
    for label, root in roots.items():
        if location.is_relative_to(root):
            return label
    return str(location)


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    function_dir, layer_dir, runtime_dir = (Path(arg).resolve() for arg in argv[1:4])
    events = [Path(arg) for arg in argv[4:]]
    _load_loopback_only().install()
    sys.path[:0] = [str(function_dir), str(layer_dir), str(runtime_dir)]
    sys.path.append(str(ROOT / "dev"))  # the Lambda context, nothing else
    import app
    from ociwrap_local.events import LocalContext

    with out.open("w", encoding="utf-8") as results:
        for path in events:
            event = json.loads(path.read_text(encoding="utf-8"))
            result = app.lambda_handler(event, LocalContext())
            answer = {k: result.get(k) for k in ("statusCode", "headers", "body")}
            results.write(json.dumps({"event": path.name, **answer}) + "\n")
        roots = {"function": function_dir, "layer": layer_dir, "runtime": runtime_dir}
        origins = {name: _origin(name, roots) for name in WATCHED}
        results.write(json.dumps({"origins": origins}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
