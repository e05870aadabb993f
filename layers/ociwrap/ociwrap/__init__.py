"""ociwrap: a pull-only OCI registry that composes wrapped images on pull.

The library the registry function runs (shipped as a Lambda layer). Names
(`reference`, `digest`), the upstream client (`upstream.transport` and
`upstream.fetch`), parsed documents and pure composition (`documents`,
`platforms`, `compose`), the S3 store (`store`, `records`), and the services
that tie them together (`imagesource`, `composer`, `proxy`, `wrapped`,
`service`). Nothing here knows HTTP requests or API Gateway: that is the
handler's job.
"""

#: The release of ociwrap, the one place it is written: provenance names it as the builder's
#: version, and `pyproject.toml` reads it from here.
__version__ = "0.1.0"
