"""The local stand-in for API Gateway + Lambda behind `make run` (not shipped to Lambda).

`python -m ociwrap_local` serves the very handler the Lambda runs, the way the deployed
stack runs it:

* `events`    the payload-2.0 event API Gateway builds, the handler's result read back,
              the Lambda context with its 29 s clock, the limits of both services.
* `instance`  one warm function instance: the handler called with one event at a time.
* `server`    the HTTP front of a worker: API Gateway's own refusals (413, 400), any
              method to the handler, the access log.
* `workers`   worker processes forked from one parent, sharing its listening socket,
              replaced when they die.
* `embedded`  the embedded S3 (moto's server, a child process) when `S3_ENDPOINT_URL`
              is unset.
* `procs`     process plumbing.
"""
