"""UPSTREAM_ALLOW's patterns: their syntax, what they match, and matching that cannot blow up."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys

import pytest

from ociwrap.names.allowlist import allows, glob_match, parse_upstream_allow
from ociwrap.registry.settings import Settings


@pytest.mark.parametrize(
    ("pattern", "name", "matched"),
    [
        ("docker.io/library/*", "docker.io/library/busybox", True),
        ("docker.io/library/*", "docker.io/library/a/b", False),  # `*` is one component
        ("docker.io/library/*", "docker.io/acme/busybox", False),
        ("docker.io/library/**", "docker.io/library/a/b", True),  # `**` crosses them
        ("ghcr.io/acme/**", "ghcr.io/acme/tool", True),
        ("ghcr.io/acme/**", "ghcr.io/acme/tools/wrapper", True),
        ("ghcr.io/acme/**", "ghcr.io/acmeco/tool", False),
        ("ghcr.io/acme/**", "ghcr.io/evil/acme/tool", False),
        ("ghcr.io/acme/tool-*", "ghcr.io/acme/tool-x", True),
        ("ghcr.io/acme/tool-*", "ghcr.io/acme/tool-x/y", False),
        ("ghcr.io/*/tool", "ghcr.io/acme/tool", True),
        ("ghcr.io/*/tool", "ghcr.io/a/b/tool", False),
        ("ghcr.io/**/tool", "ghcr.io/a/b/tool", True),
        ("ghcr.io/acme/tool?", "ghcr.io/acme/tool1", True),
        ("ghcr.io/acme/tool?", "ghcr.io/acme/tool/", False),  # `?` is no `/`
        ("*.example.com/**", "r.example.com/team/app", True),
        ("*.example.com/**", "evil.com/x.example.com/app", False),
        ("ghcr.io/*/tool-?", "ghcr.io/acme/tool-1", True),
        ("ghcr.io/*/tool-?", "ghcr.io/acme/team/tool-1", False),
        ("ghcr.io/*/tool-?", "ghcr.io/acme/tool-12", False),
        ("corp/**", "corp/team/app", True),
        ("corp/**", "ghcr.io/corp/x", False),
        ("local/team/app", "local/team/app", True),
        ("local/team/app", "local/team/app2", False),
        ("local/team/app", "local/team", False),
    ],
)
def test_what_a_pattern_matches(pattern, name, matched):
    assert glob_match(pattern, name) is matched


@pytest.mark.parametrize(
    ("text", "patterns"),
    [
        ("", None),
        ("   ", None),
        ("docker.io/library/*", ("docker.io/library/*",)),
        (" docker.io/library/* , ghcr.io/acme/** ,", ("docker.io/library/*", "ghcr.io/acme/**")),
        ("local", ("local/**",)),  # a registry alone: all of it
        ("ghcr.io", ("ghcr.io/**",)),
        ("docker.io/busybox", ("docker.io/library/busybox",)),  # as names resolve
        ("index.docker.io/library/*", ("docker.io/library/*",)),
        ("registry-1.docker.io/acme/*", ("docker.io/acme/*",)),
        ("docker.io/**", ("docker.io/**",)),
        ("local/**,local/**", ("local/**",)),
    ],
)
def test_patterns_are_read_as_names_are_spelled(text, patterns):
    assert parse_upstream_allow(text, {"local": "http://127.0.0.1:5001"}) == patterns


REGISTRY = (
    "must start with a registry: a host such as docker.io or ghcr.io, or an alias of "
    "REGISTRY_ALIASES (Docker Hub images are docker.io/library/<name>)"
)
CHARACTERS = "may hold only lowercase letters, digits, '.', '_', '-', '/', '*' and '?'"
LONG = "ghcr.io/" + "a" * 505  # 513 characters


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("library/busybox", REGISTRY),
        ("busybox", REGISTRY),
        ("Docker.io/library/*", CHARACTERS),
        ("docker.io/library/bu sybox", CHARACTERS),
        ("docker.io:443/library/*", CHARACTERS),
        ("ghcr.io//acme", "has an empty path component"),
        ("ghcr.io/acme/", "has an empty path component"),
        ("/ghcr.io/acme", "has an empty path component"),
        ("ghcr.io/***", "has '***': write '*' (one component) or '**' (any number)"),
        (LONG, "is longer than 512 characters"),
    ],
)
def test_a_malformed_pattern_is_a_start_up_error_naming_the_setting(text, why):
    with pytest.raises(ValueError) as raised:
        Settings.from_env({"ARTIFACT_BUCKET": "b", "UPSTREAM_ALLOW": f"docker.io/x, {text}"})
    assert str(raised.value) == f"UPSTREAM_ALLOW pattern {text[:80]!r} {why}"


def test_a_setting_without_patterns_is_an_error():
    with pytest.raises(ValueError, match=r"^UPSTREAM_ALLOW holds no pattern$"):
        parse_upstream_allow(" , ", {})


@pytest.mark.parametrize(
    "text",
    [
        "ghcr.io/" + "a" * 504,  # 512 characters
        "ghcr.io/acme/my_tool",
        "ghcr.io/acme/tool-?",
        "localhost/team/app",
        "*.example.com/**",
        "*/library/busybox",  # a wildcard may stand for the registry
        "loca?/team/app",
    ],
)
def test_what_a_pattern_may_be(text):
    assert parse_upstream_allow(text, {}) == (text,)


def test_an_alias_is_a_registry_in_patterns():
    settings = Settings.from_env(
        {
            "ARTIFACT_BUCKET": "b",
            "REGISTRY_ALIASES": "corp=https://r.corp.example",
            "UPSTREAM_ALLOW": "corp/team/*,docker.io/library/*",
        }
    )
    assert settings.upstream_allow == ("corp/team/*", "docker.io/library/*")
    assert allows(settings.upstream_allow, "corp/team/app")
    assert not allows(settings.upstream_allow, "corp/other/app")
    assert Settings.from_env({"ARTIFACT_BUCKET": "b"}).upstream_allow is None


def _oracle(pattern: str, name: str) -> bool:
    """The same glob as a regular expression (fine for short names, exponential for others)."""
    regex = "".join(
        ".*"
        if part == "**"
        else "[^/]*"
        if part == "*"
        else "[^/]"
        if part == "?"
        else re.escape(part)
        for part in re.findall(r"\*\*|\*|\?|[^*?]", pattern)
    )
    return re.fullmatch(regex, name) is not None


def test_matching_agrees_with_a_regular_expression_on_random_globs():
    rng = random.Random(18)
    for _ in range(3000):
        pattern = "".join(
            rng.choice(["a", "b", "/", "*", "**", "?"]) for _ in range(rng.randint(0, 7))
        )
        name = "".join(rng.choice("ab/") for _ in range(rng.randint(0, 9)))
        assert glob_match(pattern, name) == _oracle(pattern, name), (pattern, name)


def test_a_name_built_to_backtrack_is_matched_in_one_pass():
    """A backtracking matcher tries about C(300, 12) ways to split this name among the
    stars before it can say no: it would not finish. The answer is the outcome; it runs in
    a process of its own only so that a broken matcher (a regular expression holds the
    interpreter while it runs) is stopped instead of hanging the test run."""
    pattern = "docker.io/" + "*a" * 12 + "*b"
    name = "docker.io/" + "a" * 300
    script = (
        "from ociwrap.names.allowlist import allows, glob_match\n"
        f"print(allows(({pattern!r}, 'docker.io/**/x'), {name!r}), "
        f"glob_match({pattern!r}, {name[:-1] + 'b'!r}))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}  # this process's ociwrap
    try:
        ran = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        pytest.fail("matching one name did not finish")
    assert ran.stdout.split() == ["False", "True"], ran.stderr
