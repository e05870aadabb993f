"""A scripted upstream registry that misbehaves on purpose, for the registry's robustness tests.

Every byte the registry reads from an upstream is untrusted. `HostileRegistry` is an
upstream that abuses that trust in one way at a time: a `ThreadingHTTPServer` in a
thread of the test process, on 127.0.0.1, on a port chosen at run time. It speaks enough
of the distribution API (`/v2/`, manifests by tag and digest with GET and HEAD, blobs,
`tags/list`, a Bearer token endpoint) to serve a small **good image** (`app`: one
layer, an OCI manifest, a config with `rootfs.diff_ids`) and a **good wrapper**
(`wrapper`: one layer, label `org.goci.wrapper=/wrapper/run.sh`), built
deterministically with `harness.images`.

The first component of the repository name picks a **scenario**, so one server serves
every test: `/v2/good/app/manifests/1` is polite, `/v2/huge-manifest/app/manifests/1`
streams a 1 GiB body. Through a gateway with the alias `evil` that is the image
`evil/huge-manifest/app:1`, or the base of `wrap/evil/huge-manifest/app/1/with/...`.
Any tag names the scenario's image. A scenario may carry a label after a dot
(`good.t7`, made by `fresh("good")`): the same behaviour with its own counters, state,
mode and content. Content is per scenario name: the base layer and both configs carry
the name, so no two scenarios share a manifest, config or base-layer digest and a
registry's content-addressed cache filled by one test never answers for another.

Scenarios (see `BEHAVIOURS`; `describe()` lists them):

* `<body>-<read>`: one kind of read gets a bad body, everything else is polite.
  body: `huge` (declares and streams 1 GiB), `endless` (chunked, no length, 1 GiB),
  `overdeclared` (declares 1 GiB, sends the real body, closes), `bomb` (gzip of 256 MiB,
  `Content-Encoding: gzip`, ~1000:1), `drip` (1 byte every 0.5 s for a minute), `stall`
  (headers after a minute; HEADs stall too), `cut` (closes halfway through the body),
  `badlen-neg|abc|plus|underscore|two` (`Content-Length: -1|abc|+5|1_0`, or two values).
  read: `manifest` (manifest GETs), `config` (config blob GETs), `blob` (layer GETs),
  `tags` (`tags/list`), `token` (Bearer auth on, the token response misbehaves),
  `error` (manifest GETs answer 500 with that body), `notfound` (404 with that body).
* documents (polite protocol, nasty content): `deep-manifest`, `deep-config` (JSON
  nested 100 000 levels), `index-5000` (index of 5000 entries), `variant-long` /
  `variant-big` (index entries with variant `v999...` of 100 000 digits / `v99999999999`;
  `app` and `wrapper` are both such indexes), `layers-200` (200 layers, 200 diff_ids),
  `html-manifest` (`"mediaType": "text/html"` served as `text/html`), `nomediatype`
  (a valid OCI manifest without `mediaType`, served as `application/json`),
  `tags-nonstring`, `tags-crlf` (a tag `v1\\r\\nX-Injected: 1`), `tags-many` (100 000).
* protocol: `lying-head` (HEAD and GET claim a digest the bytes don't have; GET by that
  digest returns other bytes), `head-405`, `head-500`, `redirect-manifest` (manifest
  requests by tag 302 to another path here), `meta-<target>-<read>` with target
  `aws|fe80|ec2v6` (169.254.169.254, [fe80::1], [fd00:ec2::254]) and read `manifest` or
  `config` (a 302 there), `blob` (layer GETs and HEADs answer 307 there), `realm` (the
  Bearer challenge's realm is there) or `token` (the token endpoint answers 302 there);
  `meta-<spelling>-blob` with spelling `decimal|hex|octal|userinfo|mapped|nat64`
  (169.254.169.254 as clients' URL parsers also read it: `2852039166`, `0xa9fea9fe`,
  `0251.0376.0251.0376`, `x@169.254.169.254`, `[::ffff:169.254.169.254]`,
  `[64:ff9b::a9fe:a9fe]`; layer redirects only), `location-nul` / `location-fold` (blob 307 whose
  Location carries a NUL or an obs-fold), `ratelimit` (429, `Retry-After: 120`),
  `unavailable-once` (the first manifest GET is 503), `bearer`, `rotate` (token t1 works
  for one request, then 401; the endpoint then issues t2), `two-challenges` (a Basic
  and a Bearer `WWW-Authenticate` line), `expires-nan|nanliteral|negative|huge|text|null`
  (odd `expires_in`), `chunked-blob` (blobs without Content-Length), `lagging`
  (manifests 0.5 s late), `slowish` (manifests and configs 1.5 s late each), `slow`
  (every read stalls), `down` (500 to everything).

A blob of 5000 bytes (`big_digest`, digest-correct) is served in every scenario, for
mirror limits. The server records every request in `seen` and counts them by
(method, kind, scenario), and how each one ended (`ends`: answered, or the client hung up
mid-answer; `wait_until_served` waits for those under way); `set_mode(scenario, mode)`
swaps a scenario's behaviour at run time (`"ok"`/`"honest"` = polite, `"down"`, `"429"`,
`"slow"`, or any scenario name).

Its parts: `content` (the images and documents), `calls` (one request and the polite
answer), `behaviours` (the scenarios), `journal` (what it saw), `server` (the registry);
the bad bodies are `harness.bodies`' writers, shared with `harness.scripted`.
"""

from __future__ import annotations

from harness.bodies import BOMB_PLAIN_BYTES, DRIP_INTERVAL, HUGE_BYTES, SLOW_SECONDS, gzip_bomb
from harness.hostile.behaviours import (
    BEHAVIOURS,
    LAG_SECONDS,
    METADATA,
    METADATA_SPELLINGS,
    MODE_ALIASES,
    RETRY_AFTER,
    SLOWISH_SECONDS,
    describe,
)
from harness.hostile.calls import SERVICE, Behaviour, Call, Seen, classify
from harness.hostile.content import (
    BIG_BLOB_BYTES,
    BIG_VARIANT,
    CRLF_TAG,
    DEEP_LEVELS,
    INDEX_ENTRIES,
    LONG_VARIANT,
    MANY_LAYERS,
    MANY_TAGS,
    SCENARIO_LABEL,
    Content,
    Doc,
    deep_json,
)
from harness.hostile.server import HostileRegistry, ScenarioState

__all__ = [
    "BEHAVIOURS",
    "BIG_BLOB_BYTES",
    "BIG_VARIANT",
    "BOMB_PLAIN_BYTES",
    "CRLF_TAG",
    "DEEP_LEVELS",
    "DRIP_INTERVAL",
    "HUGE_BYTES",
    "INDEX_ENTRIES",
    "LAG_SECONDS",
    "LONG_VARIANT",
    "MANY_LAYERS",
    "MANY_TAGS",
    "METADATA",
    "METADATA_SPELLINGS",
    "MODE_ALIASES",
    "RETRY_AFTER",
    "SCENARIO_LABEL",
    "SERVICE",
    "SLOWISH_SECONDS",
    "SLOW_SECONDS",
    "Behaviour",
    "Call",
    "Content",
    "Doc",
    "HostileRegistry",
    "ScenarioState",
    "Seen",
    "classify",
    "deep_json",
    "describe",
    "gzip_bomb",
]
