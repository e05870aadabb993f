"""Reusable integration-test harness: real registries, S3, token issuer and clients.

Everything here runs on 127.0.0.1 with ports chosen at run time and keeps its state in
directories the caller owns (pytest's tmp dirs), so tests can run side by side and leave
nothing behind. Modules:

* `procs`    - start/stop a server process, free ports, wait for HTTP readiness.
* `tools`    - skip (locally) or fail (in CI) when a command-line tool is missing.
* `tokens`   - a Bearer token issuer for Docker-registry `auth.token`.
* `moto_s3`  - moto's S3 server with dummy credentials.
* `registry` - `docker-registry` upstreams: plain, token-protected, redirecting to S3.
* `images`   - deterministic test images built in pure Python, pushed with skopeo.
* `clients`  - skopeo, podman, containerd (`ctr`) and umoci wrappers.
* `hostile`  - a scripted upstream that misbehaves on purpose (huge, slow, lying, evil).
* `throttle` - a loopback proxy that slows a server's answers (a slow upstream).
* `gateway`  - the local gateway as a process; `loopback_only` runs it with the network
               cut to 127.0.0.1.
* `cfn`      - the template as SAM transforms it and CloudFormation evaluates it.
* `lambda_invoke` - the built handler run as Lambda's Python runtime runs it.
* `sam_local` - `sam local start-api` on podman's Docker API with a stand-in Lambda base
               image, all in namespaces of its own (`sam_local_scenario` runs inside).
"""
