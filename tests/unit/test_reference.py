"""Name resolution: registries, Docker Hub defaults, aliases, wrap paths, references."""

import pytest

from ociwrap.image.recipes import wrap_scope
from ociwrap.names.reference import (
    check_reference,
    is_wrap_path,
    parse_docker_reference,
    parse_image_path,
    parse_token_name,
    parse_wrap_name,
    repository_of,
    resolve_repository,
    token_image_name,
)
from ociwrap.runtime.errors import RegistryError

ALIASES = {"local": "http://127.0.0.1:5001"}


@pytest.mark.parametrize(
    ("name", "registry", "path", "trusted"),
    [
        ("busybox", "docker.io", "library/busybox", False),
        ("acme/tool", "docker.io", "acme/tool", False),
        ("docker.io/busybox", "docker.io", "library/busybox", False),
        ("index.docker.io/acme/tool", "docker.io", "acme/tool", False),
        ("ghcr.io/acme/tools/wrapper", "ghcr.io", "acme/tools/wrapper", False),
        ("localhost/x", "localhost", "x", False),
        ("local/test/img", "local", "test/img", True),
    ],
)
def test_resolve_repository(name, registry, path, trusted):
    repo = resolve_repository(name, ALIASES)
    assert (repo.registry.name, repo.path, repo.registry.trusted) == (registry, path, trusted)


def test_registry_urls():
    assert resolve_repository("busybox", {}).registry.url == "https://registry-1.docker.io"
    assert resolve_repository("quay.io/a/b", {}).registry.url == "https://quay.io"
    assert resolve_repository("local/a", ALIASES).registry.url == "http://127.0.0.1:5001"


@pytest.mark.parametrize("name", ["Busybox", "a//b", "a/-b", "ghcr.io/", "x" * 256, "a/b_"])
def test_invalid_names(name):
    with pytest.raises(RegistryError) as caught:
        resolve_repository(name, {})
    assert caught.value.code == "NAME_INVALID"
    assert caught.value.status == 400


def test_image_path_with_tag_and_pin():
    ref = parse_image_path("ubuntu/22.04", {})
    assert str(ref) == "docker.io/library/ubuntu:22.04"
    pinned = parse_image_path("ghcr.io/acme/tool/sha256-" + "a" * 64, {})
    assert pinned.digest == "sha256:" + "a" * 64
    assert pinned.reference == pinned.digest


def test_wrap_name_splits_at_first_with():
    wrap = parse_wrap_name("wrap/ubuntu/22.04/with/ghcr.io/acme/tools/wrapper/v1", {})
    assert wrap is not None
    assert str(wrap.base) == "docker.io/library/ubuntu:22.04"
    assert str(wrap.wrapper) == "ghcr.io/acme/tools/wrapper:v1"
    assert parse_wrap_name("library/busybox", {}) is None


@pytest.mark.parametrize("name", ["wrap/ubuntu/22.04", "wrap/ubuntu/with/x/1", "wrap/u/1/with/x"])
def test_bad_wrap_names(name):
    with pytest.raises(RegistryError) as caught:
        parse_wrap_name(name, {})
    assert caught.value.code == "NAME_INVALID"


def test_wrap_spellings_share_one_identity():
    """`busybox/1` and `docker.io/library/busybox/1` are the same wrap (same blob records)."""
    short = parse_wrap_name("wrap/busybox/1/with/acme/tool/2", {})
    long = parse_wrap_name("wrap/docker.io/library/busybox/1/with/index.docker.io/acme/tool/2", {})
    assert wrap_scope(short) == wrap_scope(long)
    other = parse_wrap_name("wrap/busybox/2/with/acme/tool/2", {})
    assert wrap_scope(other) != wrap_scope(short)


@pytest.mark.parametrize("ref", ["latest", "1.36", "v1_2-3.x", "A" * 128])
def test_tags_are_references(ref):
    assert check_reference(ref) == ref


@pytest.mark.parametrize(
    ("ref", "code", "status"),
    [
        ("-bad-tag", "MANIFEST_UNKNOWN", 404),
        (".hidden", "MANIFEST_UNKNOWN", 404),
        ("a" * 129, "MANIFEST_UNKNOWN", 404),
        ("tag with space", "MANIFEST_UNKNOWN", 404),
        ("bad:ref", "DIGEST_INVALID", 400),
        ("sha256:" + "0" * 63, "DIGEST_INVALID", 400),
        ("sha256:" + "A" * 64, "DIGEST_INVALID", 400),
    ],
)
def test_references_that_are_neither_tag_nor_digest(ref, code, status):
    """A reference that cannot be a tag names no manifest (404, as the conformance suite
    expects); one written as a digest but malformed stays a 400."""
    with pytest.raises(RegistryError) as caught:
        check_reference(ref)
    assert (caught.value.code, caught.value.status) == (code, status)


def test_wrap_image_tags_must_be_tags():
    with pytest.raises(RegistryError) as caught:
        parse_image_path("ubuntu/-x", {})
    assert caught.value.code == "NAME_INVALID"


def error_of(call, *args) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        call(*args)
    return caught.value


# -- the name grammar, boundary by boundary ------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "0ad",
        "py3",
        "a1b2/c3d4",
        "a.b",
        "a_b",
        "a__b",
        "a-b",
        "a--b",
        "a---b",
        "a.1",
        "a-0",
        "x-y_z.w__v",
        "a" * 255,
    ],
)
def test_valid_components(name):
    repo = resolve_repository(name, {})
    assert repo.path == (f"library/{name}" if "/" not in name else name)


@pytest.mark.parametrize(
    "name",
    ["a___b", "a..b", "a._b", "a_.b", "a-.b", "-a", "a-", "_a", "a_", ".a", "a.", "aB", "a b"],
)
def test_invalid_components_name_the_component(name):
    err = error_of(resolve_repository, f"acme/{name}", {})
    assert (err.code, err.status) == ("NAME_INVALID", 400)
    assert err.message == (
        f"invalid repository name 'acme/{name}': component {name!r} must be lowercase "
        "letters and digits separated by '.', '_', '__' or '-'"
    )
    assert err.detail == {"name": f"acme/{name}"}


@pytest.mark.parametrize("length", [255, 256])
def test_names_are_at_most_255_characters(length):
    name = "acme/" + "a" * (length - 5)
    if length == 255:
        assert resolve_repository(name, {}).path == name
        return
    err = error_of(resolve_repository, name, {})
    assert (err.code, err.message, err.detail) == (
        "NAME_INVALID",
        f"invalid repository name {name!r}: must be 1 to 255 characters",
        {"name": name},
    )


def spelled(unit: str, length: int, tail: str) -> str:
    """`unit` over and over, then `tail`: `length` characters in all."""
    return (unit * length)[: length - len(tail)] + tail


#: Names of 255 characters, the longest whose components are read, built so that a
#: matcher that backtracks tries every way of splitting their runs of letters and
#: separators before it can refuse them (one of 25 characters would already take seconds).
NAMES_BUILT_TO_BACKTRACK = [
    spelled("a", 255, "!"),
    spelled("a", 255, "-"),
    spelled("a", 255, "A"),
    spelled("0a9", 255, "."),
    "a" + "-" * 30 + spelled("b", 224, "!"),
    spelled("a-", 255, "!"),
    spelled("ab-", 255, "-"),
    spelled("a--", 255, "_"),
    spelled("a.", 255, ".."),
    spelled("a_", 255, "_."),
    spelled("a__", 255, "___"),
    "acme/" + spelled("a", 250, "/"),
    "acme/" + spelled("aa-", 250, "-b_"),
    "acme/" + spelled("x", 125, "!") + "/" + spelled("x", 124, "!"),
]


@pytest.mark.parametrize("name", NAMES_BUILT_TO_BACKTRACK)
def test_long_names_built_to_backtrack_are_refused_in_linear_time(name, bounded):
    assert len(name) == 255
    assert bounded(error_of, resolve_repository, name, {}).code == "NAME_INVALID"


@pytest.mark.parametrize(
    "host",
    [
        spelled("a-", 100_000, "-.io"),
        spelled("a.", 100_000, "-"),
        "a" + spelled("-", 100_000, ".io"),
        spelled("a", 100_000, "-.io"),
        spelled("a.b-", 100_000, "_.io"),
    ],
)
def test_long_registry_hosts_built_to_backtrack_are_refused_in_linear_time(host, bounded):
    name = f"{host}/x"
    assert bounded(error_of, resolve_repository, name, {}).message == (
        f"invalid registry host {host!r} in {name!r}"
    )


def test_an_empty_name_is_invalid():
    err = error_of(resolve_repository, "", {})
    assert (err.code, err.message) == (
        "NAME_INVALID",
        "invalid repository name '': must be 1 to 255 characters",
    )


@pytest.mark.parametrize(
    ("name", "host", "path"),
    [
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "team/app",
        ),
        ("a.io/x", "a.io", "x"),
        ("my.io/x", "my.io", "x"),
        ("a.b.io/x", "a.b.io", "x"),
        ("registry1.example2.io/x", "registry1.example2.io", "x"),
        ("r.1b2c3.io/x", "r.1b2c3.io", "x"),
        ("my-registry.io/x", "my-registry.io", "x"),
        ("r.example.io/x-y", "r.example.io", "x-y"),
    ],
)
def test_registry_hosts(name, host, path):
    repo = resolve_repository(name, {})
    assert (repo.registry.name, repo.registry.url, repo.path) == (host, f"https://{host}", path)
    assert not repo.registry.trusted


@pytest.mark.parametrize(
    "host",
    ["my_registry.io", "-a.io", "a-.io", "a..io", ".io", "a.io.", "GHCR.io", "a.-b.io", "a.b-.io"],
)
def test_invalid_registry_hosts(host):
    name = f"{host}/x"
    err = error_of(resolve_repository, name, {})
    assert (err.code, err.status) == ("NAME_INVALID", 400)
    assert err.message == f"invalid registry host {host!r} in {name!r}"
    assert err.detail == {"name": name}


@pytest.mark.parametrize("host", ["docker.io", "index.docker.io", "registry-1.docker.io"])
def test_docker_hub_spellings(host):
    repo = resolve_repository(f"{host}/busybox", {})
    assert (repo.registry.name, repo.registry.url, repo.path) == (
        "docker.io",
        "https://registry-1.docker.io",
        "library/busybox",
    )
    assert str(repo) == "docker.io/library/busybox"


@pytest.mark.parametrize("name", ["local", "ghcr.io", "localhost"])
def test_a_single_component_is_a_docker_hub_image(name):
    """Only a first component *followed by more* can be a registry or an alias."""
    repo = resolve_repository(name, {"local": "http://127.0.0.1:5001"})
    assert (repo.registry.name, repo.registry.url, repo.path) == (
        "docker.io",
        "https://registry-1.docker.io",
        f"library/{name}",
    )


def test_aliases_win_over_hosts_and_keep_their_url():
    aliases = {"ghcr.io": "http://10.0.0.5:5000"}
    repo = resolve_repository("ghcr.io/acme/tool", aliases)
    assert (repo.registry.name, repo.registry.url, repo.registry.trusted) == (
        "ghcr.io",
        "http://10.0.0.5:5000",
        True,
    )
    assert repo.path == "acme/tool"  # no `library/` for an alias, even with one component
    assert resolve_repository("ghcr.io/tool", aliases).path == "tool"


@pytest.mark.parametrize("tag", ["_private", "v", "1", "a" * 128, "A.b-C_d"])
def test_tag_grammar(tag):
    assert check_reference(tag) == tag


def test_check_reference_error_names_the_reference():
    err = error_of(check_reference, "-bad")
    assert (err.code, err.status) == ("MANIFEST_UNKNOWN", 404)
    assert err.message == "manifest reference '-bad' is neither a valid tag nor a digest"
    assert err.detail == {"reference": "-bad"}


def test_check_reference_passes_digests():
    assert check_reference("sha256:" + "0" * 64) == "sha256:" + "0" * 64


# -- wrap paths ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["ubuntu/", "22.04", "/22.04", ""])
def test_image_paths_need_a_repository_and_a_tag(path):
    err = error_of(parse_image_path, path, {})
    assert (err.code, err.status) == ("NAME_INVALID", 400)
    assert err.message == (
        f"invalid image {path!r} in wrap name: write it as <repository>/<tag>, "
        "e.g. ubuntu/22.04 or ghcr.io/acme/tool/v1"
    )
    assert err.detail == {"image": path}


def test_image_path_tag_error_names_the_image():
    err = error_of(parse_image_path, "ubuntu/-x", {})
    assert err.message == (
        "invalid tag '-x' in wrap name: the last component of an image is its tag "
        "or a sha256-<hex> pin"
    )
    assert err.detail == {"image": "ubuntu/-x"}


def test_image_path_pins_keep_their_repository():
    pinned = parse_image_path("ghcr.io/acme/tool/sha256-" + "b" * 64, {})
    assert str(pinned) == "ghcr.io/acme/tool@sha256:" + "b" * 64
    assert pinned.tag is None
    aliased = parse_image_path("local/team/app/v2", ALIASES)
    assert (str(aliased), aliased.reference) == ("local/team/app:v2", "v2")
    assert aliased.repository.registry.url == "http://127.0.0.1:5001"


def test_a_wrap_path_splits_at_the_first_with():
    wrap = parse_wrap_name("wrap/a/1/with/b/with/c/2", {})
    assert wrap.name == "wrap/a/1/with/b/with/c/2"
    assert str(wrap.base) == "docker.io/library/a:1"
    assert str(wrap.wrapper) == "docker.io/b/with/c:2"


def test_wrap_name_without_with_names_the_grammar():
    err = error_of(parse_wrap_name, "wrap/ubuntu/22.04", {})
    assert (err.code, err.status) == ("NAME_INVALID", 400)
    assert err.message == (
        "invalid wrap name 'wrap/ubuntu/22.04': expected wrap/<base-image>/<tag>/with/"
        "<wrapper-image>/<tag>"
    )
    assert err.detail == {"name": "wrap/ubuntu/22.04"}


@pytest.mark.parametrize("length", [255, 256])
def test_wrap_names_are_at_most_255_characters(length):
    prefix = "wrap/ubuntu/22.04/with/acme/"
    name = prefix + "w" * (length - len(prefix) - 2) + "/1"
    assert len(name) == length
    if length == 255:
        assert parse_wrap_name(name, {}).name == name
        return
    err = error_of(parse_wrap_name, name, {})
    assert (err.code, err.message, err.detail) == (
        "NAME_INVALID",
        "wrap name is 256 characters, over the 255 clients allow",
        {"name": name},
    )


@pytest.mark.parametrize("name", ["wrapped/x", "wrap", "library/wrap/a/1/with/b/2"])
def test_only_names_starting_with_wrap_are_wrap_names(name):
    assert parse_wrap_name(name, {}) is None


# -- references as docker writes them ------------------------------------------------------

PIN = "sha256:" + "c" * 64


@pytest.mark.parametrize(
    ("text", "spelled", "tag", "pinned"),
    [
        ("ubuntu:22.04", "docker.io/library/ubuntu:22.04", "22.04", None),
        ("ubuntu", "docker.io/library/ubuntu:latest", "latest", None),
        ("acme/tool:_v1", "docker.io/acme/tool:_v1", "_v1", None),
        (f"ghcr.io/a/b@{PIN}", f"ghcr.io/a/b@{PIN}", None, PIN),
        (f"ghcr.io/a/b:v1@{PIN}", f"ghcr.io/a/b@{PIN}", None, PIN),
        ("local/team/app:2", "local/team/app:2", "2", None),
    ],
)
def test_docker_references(text, spelled, tag, pinned):
    ref = parse_docker_reference(text, ALIASES)
    assert (str(ref), ref.tag, ref.digest) == (spelled, tag, pinned)


def test_docker_references_resolve_aliases():
    ref = parse_docker_reference("local/team/app", ALIASES)
    assert ref.repository.registry.url == "http://127.0.0.1:5001"
    assert ref.repository.registry.trusted


@pytest.mark.parametrize("text", [None, 5, "", "a" * 511])
def test_what_is_no_docker_reference(text):
    err = error_of(parse_docker_reference, text, {})
    assert (err.code, err.status) == ("NAME_INVALID", 400)
    assert err.message == "expected an image reference such as ubuntu:22.04"


def test_a_reference_of_510_characters_is_judged_by_its_parts():
    text = "a" * 510
    err = error_of(parse_docker_reference, text, {})
    assert err.message == f"invalid repository name {text!r}: must be 1 to 255 characters"


def test_registry_ports_cannot_be_written():
    err = error_of(parse_docker_reference, "localhost:5000/x", {})
    assert (err.code, err.status) == ("NAME_INVALID", 400)
    assert err.message == (
        "invalid image 'localhost:5000/x': registry ports cannot be named; configure an alias "
        "in REGISTRY_ALIASES"
    )
    assert err.detail == {"image": "localhost:5000/x"}
    # with a tag, the last colon is the tag's and the port is part of an invalid host
    err = error_of(parse_docker_reference, "registry.example.com:443/a/b:1", {})
    assert (err.code, err.message) == (
        "NAME_INVALID",
        "invalid registry host 'registry.example.com:443' in 'registry.example.com:443/a/b'",
    )


@pytest.mark.parametrize(
    ("text", "tag"), [("ubuntu:-bad", "-bad"), ("ubuntu:", ""), ("a:b:c", "b:c")]
)
def test_invalid_tags_in_docker_references(text, tag):
    if text == "a:b:c":  # the tag is what follows the last colon; `a:b` is no repository
        err = error_of(parse_docker_reference, text, {})
        assert err.message.startswith("invalid repository name 'a:b': component 'a:b'")
        return
    err = error_of(parse_docker_reference, text, {})
    assert (err.code, err.message, err.detail) == (
        "NAME_INVALID",
        f"invalid tag {tag!r} in {text!r}",
        {"image": text},
    )


@pytest.mark.parametrize(
    "text", ["ubuntu@sha256:short", "ubuntu@", f"ubuntu@{PIN}@{PIN}", f"ubuntu:1@{PIN[:-1]}"]
)
def test_malformed_pins_are_digest_invalid(text):
    err = error_of(parse_docker_reference, text, {})
    assert (err.code, err.status) == ("DIGEST_INVALID", 400)


@pytest.mark.parametrize(
    ("text", "repository"),
    [
        ("ubuntu:22.04", "ubuntu"),
        ("ubuntu", "ubuntu"),
        (f"ghcr.io/a/b@{PIN}", "ghcr.io/a/b"),
        (f"ghcr.io/a/b:v1@{PIN}", "ghcr.io/a/b"),
        ("localhost:5000/x", "localhost:5000/x"),
        ("localhost:5000/x:1", "localhost:5000/x"),
        ("a@b@c", "a"),
        ("x:y:z", "x:y"),
    ],
)
def test_repository_of(text, repository):
    assert repository_of(text) == repository


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("wt/abc123/library/ubuntu", ("abc123", "library/ubuntu")),
        ("wt/abc123/ghcr.io/a/b", ("abc123", "ghcr.io/a/b")),
        ("wt/abc123", ("abc123", "")),
        ("library/ubuntu", None),
        ("wrap/ubuntu/22.04/with/tools/1", None),
        ("x/wt/abc/ubuntu", None),
        ("wt", None),
    ],
)
def test_token_names_are_wt_then_the_token_then_the_repository(name, parsed):
    assert parse_token_name(name) == parsed


def test_a_token_image_name_reads_back():
    name = token_image_name("abc123", "library/ubuntu")
    assert name == "wt/abc123/library/ubuntu"
    assert parse_token_name(name) == ("abc123", "library/ubuntu")


@pytest.mark.parametrize(
    ("name", "wrapped"),
    [
        ("wrap/ubuntu/22.04/with/tools/1", True),
        ("wrap/", True),
        ("wrap", False),
        ("library/wrap/ubuntu", False),
        ("wt/abc/ubuntu", False),
    ],
)
def test_wrap_paths_start_with_wrap(name, wrapped):
    assert is_wrap_path(name) is wrapped
