"""Container token requests (validated field by field) and composition of several wrappers
with overrides: JSON in, JSON out."""

from __future__ import annotations

import json

import pytest

from ociwrap.image.compose import compose_image
from ociwrap.image.documents import parse_image
from ociwrap.image.recipes import Overrides, Recipe, from_wrap, wrap_scope
from ociwrap.names.reference import parse_wrap_name
from ociwrap.registry.token_requests import parse_token_body, parse_token_request, token_recipe
from ociwrap.runtime.errors import RegistryError

ALIASES = {"local": "http://127.0.0.1:5001"}
PIN = "sha256:" + "a" * 64


def request(**fields):
    return parse_token_request(
        {"image": "ubuntu:22.04", "wrappers": ["w:1"], **fields}, ALIASES, 86400
    )


def test_a_full_request_is_parsed_and_kept_as_given():
    parsed = parse_token_request(
        {
            "image": f"ghcr.io/acme/base@{PIN}",
            "wrappers": ["local/tools/first:1", "second"],
            "entrypoint": ["/bin/sh"],
            "cmd": ["-c", "echo hi"],
            "env": {"A": "1", "B": "x=y"},
            "labels": {"org.example": "yes"},
            "workingDir": "/work",
            "user": "1000:1000",
            "platforms": ["linux/amd64", "linux/arm64/v8"],
            "ttlSeconds": 600,
        },
        ALIASES,
        86400,
    )
    assert str(parsed.base) == f"ghcr.io/acme/base@{PIN}"
    assert [str(w) for w in parsed.wrappers] == [
        "local/tools/first:1",
        "docker.io/library/second:latest",
    ]
    assert parsed.overrides == Overrides(
        entrypoint=("/bin/sh",),
        cmd=("-c", "echo hi"),
        env=(("A", "1"), ("B", "x=y")),
        labels=(("org.example", "yes"),),
        working_dir="/work",
        user="1000:1000",
        platforms=("linux/amd64", "linux/arm64/v8"),
    )
    assert parsed.ttl_seconds == 600
    assert parsed.repository == "ghcr.io/acme/base" and parsed.tag == "latest"
    assert parsed.document["env"] == {"A": "1", "B": "x=y"}
    recipe = token_recipe("t" * 26, parsed)
    assert recipe.name == f"wt/{'t' * 26}/ghcr.io/acme/base" and not recipe.simple


def test_defaults():
    parsed = request()
    assert parsed.ttl_seconds == 86400 and parsed.overrides == Overrides()
    assert parsed.tag == "22.04" and parsed.repository == "ubuntu"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "(body)"),
        ({"wrappers": ["w"]}, "image"),
        ({"image": "Ubuntu", "wrappers": ["w"]}, "image"),
        ({"image": "u", "wrappers": []}, "wrappers"),
        ({"image": "u", "wrappers": "w"}, "wrappers"),
        ({"image": "u", "wrappers": ["w"] * 9}, "wrappers"),
        ({"image": "u", "wrappers": ["w", "host:5000/x"]}, "wrappers[1]"),
        ({"image": "u", "wrappers": ["w"], "entrypoint": "sh"}, "entrypoint"),
        ({"image": "u", "wrappers": ["w"], "cmd": [1]}, "cmd[0]"),
        ({"image": "u", "wrappers": ["w"], "env": {"A=B": "1"}}, "env.A=B"),
        ({"image": "u", "wrappers": ["w"], "env": {"A": 1}}, "env.A"),
        ({"image": "u", "wrappers": ["w"], "labels": ["x"]}, "labels"),
        ({"image": "u", "wrappers": ["w"], "workingDir": "relative"}, "workingDir"),
        ({"image": "u", "wrappers": ["w"], "user": ""}, "user"),
        ({"image": "u", "wrappers": ["w"], "platforms": ["linux"]}, "platforms[0]"),
        ({"image": "u", "wrappers": ["w"], "platforms": []}, "platforms"),
        ({"image": "u", "wrappers": ["w"], "ttlSeconds": 0}, "ttlSeconds"),
        ({"image": "u", "wrappers": ["w"], "ttlSeconds": 86401}, "ttlSeconds"),
        ({"image": "u", "wrappers": ["w"], "ttlSeconds": True}, "ttlSeconds"),
        ({"image": "u", "wrappers": ["w"], "colour": "blue"}, "colour"),
    ],
)
def test_every_field_is_checked_and_named(body, field):
    with pytest.raises(RegistryError) as caught:
        parse_token_request(body, ALIASES, 86400)
    error = caught.value
    assert (error.code, error.status) == ("INVALID_REQUEST", 400)
    assert error.detail == {"field": field} and error.message.startswith(f"{field}:")


# -- composition with several wrappers and overrides --------------------------------------


def image(seed: str, entrypoint=None, env=None, label: str | None = None, layers: int = 1):
    digest = lambda n: "sha256:" + f"{seed}{n}".encode().hex().ljust(64, "0")[:64]  # noqa: E731
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest("c"),
            "size": 1,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest(n),
                "size": 10 + n,
            }
            for n in range(layers)
        ],
    }
    inner = {"Env": env or [], "Cmd": ["base-cmd"]}
    if entrypoint:
        inner["Entrypoint"] = entrypoint
    if label:
        inner["Labels"] = {"org.goci.wrapper": label, f"org.example.{seed}": seed}
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": inner,
        "rootfs": {"type": "layers", "diff_ids": [digest(f"d{n}") for n in range(layers)]},
    }
    return parse_image(manifest, config, seed)


BASE = image("base", entrypoint=["/entry"], env=["PATH=/bin", "KEEP=1"], layers=2)
FIRST = image("one", env=["ONE=1", "SHARED=one"], label="/one/run")
SECOND = image("two", env=["SHARED=two"], label="/two/run")


def config_of(composed) -> dict:
    return json.loads(composed.config_bytes)


def test_wrappers_run_in_order_and_their_layers_follow_in_order():
    composed = compose_image(BASE, [FIRST, SECOND], {})
    config = config_of(composed)
    assert config["config"]["Entrypoint"] == ["/one/run", "/two/run", "/entry"]
    assert config["config"]["Cmd"] == ["base-cmd"]
    assert config["config"]["Env"] == ["PATH=/bin", "KEEP=1", "ONE=1", "SHARED=two"]
    assert config["config"]["Labels"] == {
        "org.goci.wrapper": "/two/run",
        "org.example.one": "one",
        "org.example.two": "two",
    }
    layers = [layer["digest"] for layer in json.loads(composed.manifest_bytes)["layers"]]
    expected = [*BASE.manifest.layers, *FIRST.manifest.layers, *SECOND.manifest.layers]
    assert layers == [layer.digest for layer in expected]
    assert len(config["rootfs"]["diff_ids"]) == 4
    assert config["history"][-1]["created_by"] == "ociwrap: entrypoint /one/run /two/run"


def test_overrides_are_applied_last():
    overrides = Overrides(
        entrypoint=("/custom",),
        cmd=("a", "b"),
        env=(("SHARED", "token"), ("NEW", "x=y")),
        labels=(("org.example.one", "overridden"),),
        working_dir="/srv",
        user="nobody",
    )
    config = config_of(compose_image(BASE, [FIRST, SECOND], {}, overrides))
    inner = config["config"]
    assert inner["Entrypoint"] == ["/custom"] and inner["Cmd"] == ["a", "b"]
    assert inner["Env"] == ["PATH=/bin", "KEEP=1", "ONE=1", "SHARED=token", "NEW=x=y"]
    assert inner["Labels"]["org.example.one"] == "overridden"
    assert (inner["WorkingDir"], inner["User"]) == ("/srv", "nobody")
    assert config["history"][-1]["created_by"] == (
        "ociwrap: overrides entrypoint, cmd, env, labels, workingDir, user"
    )


def test_one_wrapper_in_a_list_is_the_same_as_one_wrapper():
    assert compose_image(BASE, [FIRST], {}) == compose_image(BASE, FIRST, {})


def test_every_wrapper_must_bring_layers_and_the_total_stays_under_127():
    empty = image("empty", label="/x", layers=0)
    with pytest.raises(RegistryError) as caught:
        compose_image(BASE, [FIRST, empty], {})
    assert caught.value.message == "wrapper image has no layers"
    big = image("big", label="/big", layers=100)
    with pytest.raises(RegistryError) as caught:
        compose_image(BASE, [big, image("big2", label="/b", layers=26)], {})
    assert "128 layers" in caught.value.message


# -- token request limits, exactly at them and one past ------------------------------------


def refusal(**fields) -> str:
    """The message of the `400 INVALID_REQUEST` for a request with `fields`."""
    with pytest.raises(RegistryError) as caught:
        request(**fields)
    assert (caught.value.code, caught.value.status) == ("INVALID_REQUEST", 400)
    assert caught.value.detail == {"field": caught.value.message.split(":", 1)[0]}
    return caught.value.message


def test_eight_wrappers_are_read_and_nine_refused():
    assert len(request(wrappers=["w:1"] * 8).wrappers) == 8
    assert refusal(wrappers=["w:1"] * 9) == "wrappers: expected a list of 1 to 8 references"


def test_64_arguments_are_read_and_65_refused():
    for name in ("entrypoint", "cmd"):
        assert request(**{name: ["a"] * 64}).document[name] == ["a"] * 64
        assert refusal(**{name: ["a"] * 65}) == (f"{name}: expected a list of at most 64 strings")


def test_an_argument_of_4096_characters_is_read_and_4097_refused():
    assert request(cmd=["a" * 4096]).overrides.cmd == ("a" * 4096,)
    assert refusal(cmd=["ok", "a" * 4097]) == (
        "cmd[1]: expected a non-empty string of at most 4096 characters"
    )
    assert refusal(cmd=[""]) == "cmd[0]: expected a non-empty string of at most 4096 characters"


def test_256_variables_are_read_and_257_refused():
    env = {f"V{n}": "x" for n in range(256)}
    assert len(request(env=env).overrides.env) == 256
    assert refusal(env={**env, "ONE_MORE": "x"}) == (
        "env: expected an object of at most 256 strings"
    )
    labels = {f"l{n}": "x" for n in range(257)}
    assert refusal(labels=labels) == "labels: expected an object of at most 256 strings"


def test_a_variable_name_of_256_characters_is_read_and_257_refused():
    assert request(env={"N" * 256: "v"}).overrides.env == (("N" * 256, "v"),)
    assert refusal(env={"N" * 257: "v"}) == f"env.{'N' * 40}: is not a valid name"


def test_a_value_of_4096_characters_is_read_and_4097_refused():
    assert request(env={"A": "v" * 4096}).document["env"] == {"A": "v" * 4096}
    assert request(labels={"a": ""}).overrides.labels == (("a", ""),)
    assert refusal(env={"A": "v" * 4097}) == "env.A: expected a string"
    assert refusal(labels={"a": "v" * 4097}) == "labels.a: expected a string"


def test_a_field_named_by_a_long_key_shows_its_first_40_characters():
    key = "k" * 39 + "\n" + "k" * 60
    assert refusal(labels={key: 1}) == f"labels.{'k' * 39}\\n: expected a string"


def test_a_user_of_256_characters_is_read_and_257_refused():
    assert request(user="u" * 256).overrides.user == "u" * 256
    message = "user: expected a non-empty string of at most 256 characters"
    assert refusal(user="u" * 257) == message


def test_16_platforms_are_read_and_17_refused():
    platforms = [f"linux/arch{n}" for n in range(16)]
    assert request(platforms=platforms).overrides.platforms == tuple(platforms)
    assert refusal(platforms=[*platforms, "linux/one-more"]) == (
        "platforms: expected a list of at most 16 strings"
    )
    assert refusal(platforms=["linux/" + "a" * 33]) == (
        "platforms[0]: expected os/architecture[/variant]"
    )
    assert refusal(platforms=[]) == "platforms: expected at least one platform"


def test_an_image_of_512_characters_is_a_reference_and_513_are_too_long():
    long = "a" * 511 + "b"
    assert refusal(image=long) == "image: expected an image reference such as ubuntu:22.04"
    assert refusal(image=long + "c") == (
        "image: expected a non-empty string of at most 512 characters"
    )


def test_a_ttl_from_1_to_the_maximum_is_read():
    assert request(ttlSeconds=1).ttl_seconds == 1
    assert request(ttlSeconds=86400).document["ttlSeconds"] == 86400
    assert refusal(ttlSeconds=86401) == "ttlSeconds: expected a whole number from 1 to 86400"
    assert refusal(ttlSeconds=1.5).startswith("ttlSeconds:")
    lower = parse_token_request({"image": "u", "wrappers": ["w"]}, ALIASES, 600)
    assert lower.ttl_seconds == 600 and lower.document["ttlSeconds"] == 600


def test_a_working_directory_must_be_absolute():
    assert request(workingDir="/").overrides.working_dir == "/"
    assert refusal(workingDir="srv") == "workingDir: must be an absolute path"


def test_absent_and_null_fields_are_left_out():
    nulls = dict.fromkeys(("entrypoint", "cmd", "env", "labels", "workingDir", "user", "platforms"))
    parsed = request(**nulls)
    assert parsed.document == {"image": "ubuntu:22.04", "wrappers": ["w:1"], "ttlSeconds": 86400}
    assert parsed.overrides == Overrides()


def test_the_first_wrong_field_is_named():
    assert refusal(zeta=1, alpha=2) == (
        "alpha: unknown field; known fields are image, wrappers, entrypoint, cmd, env, labels, "
        "workingDir, user, platforms, ttlSeconds"
    )
    assert refusal(wrappers=[], cmd=[1]) == "wrappers: expected a list of 1 to 8 references"
    with pytest.raises(RegistryError) as caught:
        parse_token_request({"wrappers": ["w"]}, ALIASES, 86400)
    assert caught.value.message == "image: required"
    with pytest.raises(RegistryError) as caught:
        parse_token_request([], ALIASES, 86400)
    assert caught.value.message == "(body): expected a JSON object"


def test_a_request_body_must_be_a_json_document():
    assert parse_token_body(b'{"image": "u", "wrappers": ["w"]}', ALIASES, 60).ttl_seconds == 60
    with pytest.raises(RegistryError) as caught:
        parse_token_body(b"{not json", ALIASES, 60)
    assert caught.value.message.startswith("(body): not a JSON document: ")
    assert caught.value.detail == {"field": "(body)"}


def test_a_token_recipe_names_the_token_image():
    parsed = request(image=f"local/team/base@{PIN}", wrappers=["w:1", "v:2"], user="0")
    recipe = token_recipe("t" * 26, parsed)
    assert recipe.name == f"wt/{'t' * 26}/local/team/base"
    assert recipe.scope == f"token-{'t' * 26}"
    assert (recipe.base, recipe.wrappers, recipe.overrides) == (
        parsed.base,
        parsed.wrappers,
        parsed.overrides,
    )
    assert recipe.tag == "latest" == parsed.tag
    assert token_recipe("t" * 26, request()).tag == "22.04"


def test_platform_names_are_lowercase_words_of_up_to_32_characters():
    every = "az09_.-"
    word = (every * 5)[:32]
    for platform in (
        f"{every}/{every}",
        f"{every}/{every}/{every}",
        f"{word}/{word}/{word}",
        "a/b",
        "a/b/c",
    ):
        assert request(platforms=[platform]).overrides.platforms == (platform,)
    for platform in (
        f"{word}x/amd64",
        f"linux/{word}x",
        f"linux/arm/{word}x",
        "linux/",
        "/amd64",
        "linux/arm/",
        "Linux/amd64",
        "linux/arm/v7/x",
        "linux#amd64",
    ):
        assert refusal(platforms=[platform]) == "platforms[0]: expected os/architecture[/variant]"


def test_a_variable_needs_a_name():
    assert refusal(env={"": "x"}) == "env.: is not a valid name"
    assert request(env={"a b!": "x"}).overrides.env == (("a b!", "x"),)


# -- recipes of wrap paths -----------------------------------------------------------------

WRAP = "wrap/ubuntu/22.04/with/acme/tools/1.2"
#: sha256 of "docker.io/library/ubuntu:22.04|docker.io/acme/tools:1.2", first 40 hex digits:
#: the scope that source records of this wrap have always been kept under.
WRAP_SCOPE = "a0c4f72269a6217ad01a7c4023d6df8a5539e362"


def test_a_wrap_path_is_a_recipe_of_one_wrapper_and_nothing_else():
    recipe = from_wrap(parse_wrap_name(WRAP, {}))
    assert recipe.name == WRAP and recipe.scope == WRAP_SCOPE
    assert str(recipe.base) == "docker.io/library/ubuntu:22.04"
    assert [str(wrapper) for wrapper in recipe.wrappers] == ["docker.io/acme/tools:1.2"]
    assert recipe.overrides == Overrides() and recipe.tag == "latest"
    assert recipe.simple


def test_a_wraps_scope_does_not_depend_on_how_its_names_are_spelled():
    spellings = [
        WRAP,
        "wrap/library/ubuntu/22.04/with/acme/tools/1.2",
        "wrap/docker.io/library/ubuntu/22.04/with/index.docker.io/acme/tools/1.2",
    ]
    assert {wrap_scope(parse_wrap_name(name, {})) for name in spellings} == {WRAP_SCOPE}
    other = wrap_scope(parse_wrap_name("wrap/acme/tools/1.2/with/ubuntu/22.04", {}))
    assert len(other) == 40 and other != WRAP_SCOPE


@pytest.mark.parametrize(
    "overrides",
    [
        Overrides(entrypoint=("/bin/sh",)),
        Overrides(entrypoint=()),
        Overrides(cmd=("-c", "true")),
        Overrides(env=(("A", "1"),)),
        Overrides(labels=(("org.example", "yes"),)),
        Overrides(working_dir="/work"),
        Overrides(user="1000"),
        Overrides(platforms=("linux/amd64",)),
    ],
)
def test_any_override_makes_a_recipe_more_than_a_wrap_path_says(overrides):
    wrap = parse_wrap_name(WRAP, {})
    assert not overrides.empty and Overrides().empty
    recipe = Recipe(WRAP, WRAP_SCOPE, wrap.base, (wrap.wrapper,), overrides)
    assert not recipe.simple


@pytest.mark.parametrize("count", [0, 2, 3])
def test_only_one_wrapper_is_what_a_wrap_path_says(count):
    wrap = parse_wrap_name(WRAP, {})
    recipe = Recipe("wt/t/ubuntu", WRAP_SCOPE, wrap.base, (wrap.wrapper,) * count)
    assert not recipe.simple
