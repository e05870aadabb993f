"""Every regular expression that reads client or upstream input runs in linear time.

Python's `re` backtracks: a pattern with two ways to match the same text (`a+(-*a+)*`)
takes exponential time on a long text that almost matches, which a client can send on
purpose. The patterns are found in the source (every `re` call of the library, the
handler and the local server), so a new one fails here until it is listed with texts
built to make it backtrack. Each text is run at 256 characters (over the 255 of a name)
and at 100 000 (what a header or a path can carry), through every method its module
calls on it, under the `bounded` fixture's generous bound.
"""

from __future__ import annotations

import ast
import functools
import importlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Where modules are imported from, and the directories of ours under each.
SOURCES = {
    ROOT / "layers" / "ociwrap": ("ociwrap",),
    ROOT / "functions" / "registry": (".",),
    ROOT / "dev": ("ociwrap_local",),
}
#: The calls of `re` that match a pattern against a text (`re.escape` builds one).
MATCHING = {
    "compile",
    "match",
    "fullmatch",
    "search",
    "findall",
    "finditer",
    "split",
    "sub",
    "subn",
}
LENGTHS = (256, 100_000)

#: (prefix, unit, tail): the text is the prefix, the unit over and over, then the tail.
Shape = tuple[str, str, str]

#: Shapes every pattern gets: long runs of the characters names, hosts and headers share.
COMMON: list[Shape] = [("", u, "!") for u in ("a", "a-", "0.", " ,", "/", "a=")]

#: Each module-level pattern (`module:NAME`) and texts built for it: runs its repetitions
#: can split in many ways, ended by what makes the match fail at the very end.
ADVERSARIAL: dict[str, list[Shape]] = {
    "ociwrap.registry.access:_BCRYPT": [
        ("$2b$10$", "a", "!"),
        ("$2", "$", ""),
        ("$2y$1", "0", "$"),
    ],
    "ociwrap.names.allowlist:_PATTERN": [("", "a*", "A"), ("", "**/", "!")],
    "ociwrap.runtime.hops:_ENTRY": [
        ("1.1 ", "a", " (ociwrap"),
        ("1.1", " \t", "x"),
        ("HTTP/1.1 ", "a.", " \t(ociwra"),
        ("1.1 a", " ", "(ociwrap)x"),
    ],
    "ociwrap.registry.proxy:_PAGE_SIZE": [("", "1", "a"), ("", "9", "")],
    "ociwrap.names.reference:_COMPONENT": [
        ("", "a", "!"),
        ("", "a", "-"),
        ("a", "-", "!"),
        ("", "ab-", "-"),
        ("", "a--", "_"),
        ("", "a.", ".."),
        ("", "a__", "___"),
    ],
    "ociwrap.names.reference:_HOST": [
        ("", "a", "-"),
        ("", "a-", "-.io"),
        ("", "a.", "-"),
        ("a", "-", ".io"),
        ("", "a.b-", "_.io"),
    ],
    "ociwrap.names.reference:_TAG": [("", "a", "!"), ("_", "-.", "/"), ("", "A.", "")],
    "ociwrap.upstream.tokens:_TOKEN": [("", "a", " "), ("", "!~", "\x7f")],
    "ociwrap.upstream.bodies:_LENGTH": [("", "1", "a"), ("", "0", " ")],
    "ociwrap.upstream.bodies:_CONTENT_RANGE": [
        ("bytes ", "1", "-"),
        ("bytes 0-", "1", "/"),
        ("bytes 0-1/", "1", "*"),
        ("bytes ", "1-", "/1"),
    ],
    "ociwrap.upstream.fetch:_HEADER_SAFE": [("", "a", " "), ("", "%", "\x00")],
    "ociwrap.upstream.fetch:_RETRY_AFTER": [("", "1", "a!"), ("", "a ,:", "!"), ("", "1 ", ";")],
    "ociwrap.upstream.challenge:_SEPARATORS": [("", " ,", "a"), ("", "\t\r\n", ",")],
    "ociwrap.upstream.challenge:_PARAM": [
        ("", "a", " "),
        ("a", " \t", "x"),
        ("a=", " ", '"'),
        ('a="', "\\\\", "\\"),
        ('a="', '\\"', ""),
        ('a="', "x,", "\\"),
    ],
    "ociwrap.upstream.challenge:_SCHEME": [("", "a", " "), ("", "!#", '"')],
    "ociwrap.upstream.challenge:_ESCAPE": [("", "\\", ""), ("", "\\\\a", "\\")],
    "ociwrap.upstream.locations:_AUTHORITY": [("", "a@", "\\"), ("", "%", " ")],
    "ociwrap.upstream.locations:_SCHEME": [("", "a+", "/"), ("a", ".", ""), ("a:", "\n", "")],
    "ociwrap.upstream.locations:_PORT": [(":", "1", ""), ("", ":", "")],
    "ociwrap.upstream.locations:_NAME": [
        ("", "a", "-"),
        ("", "a-", "-"),
        ("", "a.", "-"),
        ("a", "-", ".x"),
        ("", "a" * 62 + ".", "a" * 63),
    ],
    "ociwrap.upstream.locations:_NUMBER": [("0x", "f", "g"), ("", "0", "x")],
    "ociwrap.upstream.ecr:_ECR_HOST": [
        ("", "1", ".dkr.ecr."),
        ("123456789012.dkr.ecr.", "a-", ".amazonaws.co"),
        ("123456789012.dkr.ecr-fips.", "-", "."),
        ("123456789012.dkr.ecr.a.amazonaws.com", ".cn", ""),
    ],
    "ociwrap.registry.settings:_HOSTNAME": [
        ("", "a.", "-"),
        ("", "a-", ":"),
        ("a", "-", ":1"),
        ("a:", "1", ""),
    ],
    "ociwrap.bucket.staging:_PART_NAME": [
        ("part-", "0", ".0"),
        ("part-00001.", "f", ".las"),
        ("part-00001." + "0" * 32, ".last", ""),
    ],
    "ociwrap.names.digest:_SHA256": [("sha256:", "a", "!"), ("sha256:", "0", "")],
    "ociwrap.names.digest:_ANY": [
        ("", "a", "!"),
        ("", "a-", ":"),
        ("", "a+", ""),
        ("a:", "=", "!"),
        ("", "a", ":!"),
        ("", "a._", "a:"),
    ],
    "ociwrap.names.digest:_LOWER_HEX": [("", "a", "g"), ("", "0", "A")],
    "ociwrap.names.digest:_PIN": [("sha256-", "a", "!"), ("sha256-", "0", "")],
    "ociwrap.image.platforms:_ARM64_VARIANT": [("v8.", "1", ""), ("v", "8", "")],
    "ociwrap.image.platforms:_ARCH_VARIANT": [("v", "1", "")],
    "ociwrap.registry.token_requests:_PLATFORM": [
        ("", "a", "/"),
        ("a/", "a", "/!"),
        ("", "a/", "/"),
    ],
    "ociwrap.registry.token_requests:_ENV_NAME": [("", "a", "="), ("", "a", "\x00")],
    "ociwrap.registry.container_tokens:_TOKEN": [("", "a", "1"), ("", "2", "")],
    "routes:_CONTENT": [
        ("/v2/", "a/", "manifests/"),
        ("/v2/", "a/manifests/", "x/y"),
        ("/v2/", "/blobs/", "/"),
        ("/v2/", "referrers/", ""),
    ],
    "routes:_TAGS": [("/v2/", "a/tags/", "list/x"), ("/v2/", "/tags/list", "/")],
    "ociwrap_local.server:_TOKEN": [("", "a", " "), ("", "!", "/")],
    "ociwrap_local.server:_DIGITS": [("", "1", "a")],
    "ociwrap_local.server:_HEX": [("", "f", "g"), ("", "0", ";")],
}


def module_name(root: Path, path: Path) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts)


def sources() -> Iterator[tuple[str, ast.Module]]:
    """(module name, syntax tree) of every module whose patterns see outside input."""
    for root, packages in SOURCES.items():
        for package in packages:
            directory = root / package
            paths = directory.glob("*.py") if package == "." else directory.rglob("*.py")
            for path in sorted(paths):
                yield module_name(root, path), ast.parse(path.read_text(), str(path))


def _is_re_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "re"
        and node.func.attr in MATCHING
    )


def _module_patterns(tree: ast.Module) -> dict[str, ast.Call]:
    """`NAME = re.compile(...)` at module level: NAME and the call."""
    found = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and _is_re_call(value) and value.func.attr == "compile":
            found[target.id] = value
    return found


def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.AST]]:
    """(qualified name, node) of every function and class, nested ones too."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield prefix + node.name, node
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


@functools.cache
def discovered() -> tuple[dict[str, set[str]], set[str], list[str]]:
    """What the source holds: module-level patterns (with the methods their module calls on
    them), `re` calls inside functions (patterns built at run time), and `from re import`."""
    patterns: dict[str, set[str]] = {}
    at_run_time: set[str] = set()
    unreadable: list[str] = []
    for module, tree in sources():
        own = _module_patterns(tree)
        for name in own:
            patterns[f"{module}:{name}"] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "re":
                unreadable.append(f"{module}: from re import ...")
            call = node.func if isinstance(node, ast.Call) else None
            if (
                isinstance(call, ast.Attribute)
                and isinstance(call.value, ast.Name)
                and call.value.id in own
            ):
                patterns[f"{module}:{call.value.id}"].add(call.attr)
        module_level = {id(call) for call in own.values()}
        innermost: dict[int, str] = {}
        for qualified, function in _functions(tree):
            for node in ast.walk(function):
                innermost[id(node)] = qualified  # deeper functions come later and win
        for node in ast.walk(tree):
            if _is_re_call(node) and id(node) not in module_level:
                at_run_time.add(f"{module}:{innermost.get(id(node), '<module>')}")
    return patterns, at_run_time, unreadable


def texts(shapes: list[Shape]) -> Iterator[str]:
    for prefix, unit, tail in shapes:
        for length in LENGTHS:
            count = (length - len(prefix) - len(tail)) // len(unit) + 1
            yield prefix + unit * count + tail


def pattern(key: str) -> re.Pattern[Any]:
    module, name = key.split(":")
    return getattr(importlib.import_module(module), name)


def run(compiled: re.Pattern[Any], method: str, text: str) -> Any:
    """The pattern's `method` on `text` (all of its matches, for the ones that iterate)."""
    subject: str | bytes = text.encode("latin-1") if isinstance(compiled.pattern, bytes) else text
    call: Callable[..., Any] = getattr(compiled, method)
    if method in ("sub", "subn"):
        return call(subject[:0], subject)
    result = call(subject)
    return list(result) if method == "finditer" else result


def test_every_pattern_is_listed_with_texts_built_to_make_it_backtrack():
    patterns, _, unreadable = discovered()
    assert not unreadable, f"{unreadable}: write `re.<function>(...)`, which this test finds"
    unlisted = sorted(set(patterns) - set(ADVERSARIAL))
    assert not unlisted, f"list adversarial texts for {unlisted} in ADVERSARIAL"
    gone = sorted(set(ADVERSARIAL) - set(patterns))
    assert not gone, f"{gone} are no module-level patterns any more: remove them"


def test_no_pattern_is_built_at_run_time():
    """A pattern built from data (a glob, a setting) can backtrack on what it is given,
    whatever texts are listed here: such data is matched by a scan of its own instead."""
    at_run_time = discovered()[1]
    assert not at_run_time, (
        f"`re` is called inside {sorted(at_run_time)}: compile the pattern at module level "
        "(and list it in ADVERSARIAL), or match data without a regular expression"
    )


@pytest.mark.parametrize("key", sorted(ADVERSARIAL))
def test_long_texts_built_to_backtrack_are_matched_in_linear_time(key, bounded):
    compiled = pattern(key)
    assert isinstance(compiled, re.Pattern)
    methods = {"match", "fullmatch"} | discovered()[0].get(key, set())
    for text in texts(ADVERSARIAL[key] + COMMON):
        for method in sorted(methods):
            bounded(run, compiled, method, text)
