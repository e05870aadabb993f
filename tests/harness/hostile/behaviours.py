"""The hostile registry's scenarios: what each one does with a request (`BEHAVIOURS`).

`describe()` lists them; the module docstring of `harness.hostile` says what they are for.
"""

from __future__ import annotations

from collections.abc import Callable

from harness import bodies
from harness.bodies import WRITERS, Writer, write_stall
from harness.hostile.calls import DIGEST, Behaviour, Call, polite, polite_token
from harness.upstream_server import JSON, error_body

LAG_SECONDS = 0.5  # `lagging`: every manifest answer
SLOWISH_SECONDS = 1.5  # `slowish`: every manifest and config answer
RETRY_AFTER = "120"
METADATA = {
    "aws": "http://169.254.169.254/latest/meta-data/",
    "fe80": "http://[fe80::1]/latest/meta-data/",
    "ec2v6": "http://[fd00:ec2::254]/latest/meta-data/",
}
#: 169.254.169.254 spelled as clients' URL parsers also read it (for layer redirects only:
#: the connection guard judges what the resolver makes of them).
METADATA_SPELLINGS = {
    "decimal": "http://2852039166/latest/meta-data/",
    "hex": "http://0xa9fea9fe/latest/meta-data/",
    "octal": "http://0251.0376.0251.0376/latest/meta-data/",
    "userinfo": "http://registry.example@169.254.169.254/latest/meta-data/",
    "mapped": "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "nat64": "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
}
MODE_ALIASES = {"ok": "good", "honest": "good", "429": "ratelimit"}


# Which `Call.kind` each read of the grid attacks, and the status its bad body comes with.
READS: dict[str, tuple[str, int | None]] = {
    "manifest": ("manifest", None),
    "config": ("config", None),
    "blob": ("blob", None),
    "tags": ("tags", None),
    "error": ("manifest", 500),
    "notfound": ("manifest", 404),
}


def misbehave(read: str, writer: Writer) -> Behaviour:
    """Polite, except that `read` comes with `writer`'s body (a token read: auth on)."""
    if read == "token":
        return Behaviour(
            token=lambda call: writer(call.wire, *call.answer()), doc=writer.__doc__ or ""
        )

    kind, error_status = READS[read]

    def registry(call: Call) -> None:
        if call.kind != kind or (call.method == "HEAD" and writer is not write_stall):
            polite(call)
        elif error_status is not None:
            body = error_body("UNKNOWN", "upstream trouble")
            writer(call.wire, error_status, [JSON], body)
        else:
            writer(call.wire, *call.answer())

    return Behaviour(registry, doc=writer.__doc__ or "")


def down(call: Call) -> None:
    """500 to every request."""
    call.send_error(500, "UNKNOWN", "the registry is down")


def ratelimit(call: Call) -> None:
    """429 with Retry-After: 120 to every request."""
    call.send_error(429, "TOOMANYREQUESTS", "slow down", ("Retry-After", RETRY_AFTER))


def slow(call: Call) -> None:
    """Every read holds its headers back for a minute."""
    write_stall(call.wire, *call.answer())


def delayed(seconds: float, kinds: tuple[str, ...]) -> Callable[[Call], None]:
    def registry(call: Call) -> None:
        if call.kind in kinds and not call.wire.pause(seconds):
            return
        polite(call)

    registry.__doc__ = f"{'/'.join(kinds)} answers {seconds} s late"
    return registry


def lying_head(call: Call) -> None:
    """HEAD and GET by tag claim a digest the bytes don't have; GET by it gives other bytes."""
    content = call.server.content
    if call.kind == "manifest":
        doc = content.lies.get(call.ref) or (
            None if DIGEST.match(call.ref) else content.top(call.scenario, call.repo)
        )
        if doc is not None:
            lie = content.lie_of(doc)
            headers = [("Content-Type", doc.media_type), ("Docker-Content-Digest", lie)]
            return call.send(200, headers, doc.body)
    polite(call)


def refuse_head(status: int) -> Callable[[Call], None]:
    def registry(call: Call) -> None:
        if call.kind == "manifest" and call.method == "HEAD":
            call.send_error(status, "UNSUPPORTED", "no HEAD here")
        else:
            polite(call)

    registry.__doc__ = f"manifest HEADs answer {status}, GETs work"
    return registry


def redirect_manifest(call: Call) -> None:
    """Manifest requests by tag answer 302 to another path here (`?moved=1`), then polite."""
    if call.kind == "manifest" and not DIGEST.match(call.ref) and "moved" not in call.params:
        call.send(302, [("Location", f"{call.server.url}{call.path}?moved=1")])
    else:
        polite(call)


def redirect_to(target: str, kind: str, status: int = 302) -> Callable[[Call], None]:
    def registry(call: Call) -> None:
        if call.kind == kind:
            call.send(status, [("Location", target)])
        else:
            polite(call)

    registry.__doc__ = f"{kind} requests answer {status} to {target}"
    return registry


def redirect_token(target: str) -> Callable[[Call], None]:
    def token(call: Call) -> None:
        call.send(302, [("Location", target)])

    return token


def bad_location(location_tail: str) -> Callable[[Call], None]:
    def registry(call: Call) -> None:
        if call.kind == "blob" and call.method == "GET":
            call.send(307, [("Location", f"{call.server.url}/storage/{location_tail}")])
        else:
            polite(call)

    registry.__doc__ = f"layer GETs answer 307 with Location .../storage/{location_tail!r}"
    return registry


def unavailable_once(call: Call) -> None:
    """The first manifest GET of the scenario is 503, later ones are polite."""
    if call.kind == "manifest" and call.method == "GET" and call.server.bump(call.scenario) == 1:
        call.send_error(503, "UNAVAILABLE", "try again")
    else:
        polite(call)


def chunked_blob(call: Call) -> None:
    """Layer blobs come without Content-Length (chunked GETs, length-less HEADs)."""
    status, headers, body = call.answer()
    if call.kind != "blob" or status != 200:
        return call.send(status, headers, body)
    if call.method == "HEAD":
        return call.wire.start(200, headers, close=True)
    call.wire.start(200, [*headers, ("Transfer-Encoding", "chunked")])
    bodies.drip(call.wire, bodies.chunked(bodies.pieces(body, 1000)))


def expiring(literal: str) -> Behaviour:
    return Behaviour(
        token=lambda call: call.send(*call.token_answer(literal)),
        doc=f"Bearer auth, token responses with expires_in {literal}",
    )


BEHAVIOURS: dict[str, Behaviour] = {
    "good": Behaviour(doc="polite"),
    "down": Behaviour(down, doc=down.__doc__ or ""),
    "ratelimit": Behaviour(ratelimit, doc=ratelimit.__doc__ or ""),
    "slow": Behaviour(slow, doc=slow.__doc__ or ""),
    "lagging": Behaviour(delayed(LAG_SECONDS, ("manifest",))),
    "slowish": Behaviour(delayed(SLOWISH_SECONDS, ("manifest", "config"))),
    "lying-head": Behaviour(lying_head, doc=lying_head.__doc__ or ""),
    "head-405": Behaviour(refuse_head(405)),
    "head-500": Behaviour(refuse_head(500)),
    "redirect-manifest": Behaviour(redirect_manifest, doc=redirect_manifest.__doc__ or ""),
    "location-nul": Behaviour(bad_location("blob\x00evil")),
    "location-fold": Behaviour(bad_location("blob\r\n folded")),
    "unavailable-once": Behaviour(unavailable_once, doc=unavailable_once.__doc__ or ""),
    "chunked-blob": Behaviour(chunked_blob, doc=chunked_blob.__doc__ or ""),
    "bearer": Behaviour(token=polite_token, doc="Bearer auth, polite"),
    "rotate": Behaviour(token=polite_token, rotate=True, doc="token t1 works once, then t2"),
    "two-challenges": Behaviour(
        token=polite_token, basic_first=True, doc="Basic and Bearer challenge lines"
    ),
    "expires-nan": expiring('"NaN"'),
    "expires-nanliteral": expiring("NaN"),
    "expires-negative": expiring("-5"),
    "expires-huge": expiring("1e309"),
    "expires-text": expiring('"abc"'),
    "expires-null": expiring("null"),
}
for _writer_name, _writer in WRITERS.items():
    for _read in [*READS, "token"]:
        BEHAVIOURS[f"{_writer_name}-{_read}"] = misbehave(_read, _writer)
for _target_name, _target in METADATA.items():
    BEHAVIOURS[f"meta-{_target_name}-manifest"] = Behaviour(redirect_to(_target, "manifest"))
    BEHAVIOURS[f"meta-{_target_name}-config"] = Behaviour(redirect_to(_target, "config"))
    BEHAVIOURS[f"meta-{_target_name}-blob"] = Behaviour(redirect_to(_target, "blob", 307))
    BEHAVIOURS[f"meta-{_target_name}-realm"] = Behaviour(
        token=polite_token, realm=_target, doc=f"Bearer challenge with realm {_target}"
    )
    BEHAVIOURS[f"meta-{_target_name}-token"] = Behaviour(
        token=redirect_token(_target), doc=f"the token endpoint answers 302 to {_target}"
    )
for _target_name, _target in METADATA_SPELLINGS.items():
    BEHAVIOURS[f"meta-{_target_name}-blob"] = Behaviour(redirect_to(_target, "blob", 307))
for _name in (
    "deep-manifest",
    "deep-config",
    "index-5000",
    "variant-long",
    "variant-big",
    "layers-200",
    "html-manifest",
    "nomediatype",
    "tags-nonstring",
    "tags-crlf",
    "tags-many",
):
    BEHAVIOURS[_name] = Behaviour(doc="polite protocol, nasty documents")


def describe() -> dict[str, str]:
    """Scenario name -> one line on what it does."""
    return {
        name: b.doc or (b.registry.__doc__ or "").strip() for name, b in sorted(BEHAVIOURS.items())
    }
