"""The scripted upstream under the name the unit tests import it by; it is
`harness.scripted`, built on the same loopback server as `harness.hostile`."""

from harness.scripted import (
    OCI_MANIFEST,
    Drip,
    Route,
    Scripted,
    Stall,
    closed_port,
    digest_of,
    drip,
    handler_on_stub,
    one_layer_image,
    serve_paths,
    stub_environment,
    stub_paths,
)
from harness.upstream_server import client_gone

__all__ = [
    "OCI_MANIFEST",
    "Drip",
    "Route",
    "Scripted",
    "Stall",
    "client_gone",
    "closed_port",
    "digest_of",
    "drip",
    "handler_on_stub",
    "one_layer_image",
    "serve_paths",
    "stub_environment",
    "stub_paths",
]
