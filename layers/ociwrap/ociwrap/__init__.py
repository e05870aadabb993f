"""ociwrap: a pull-only OCI registry that composes wrapped images on pull.

The package is the library every Lambda function shares (shipped as a layer):
names (`reference`), the upstream client (`upstream`), pure composition
(`compose`), the S3 store (`store`) and the registry service that ties them
together (`registry`). Nothing here knows about API Gateway except `gateway`,
the local stand-in for it.
"""
