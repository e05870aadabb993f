"""Mutants of a module's module-level constants: regexes, strings, numbers, sets, dicts.

mutmut changes function bodies only, while much of what a module means lives in its
constants (a name grammar, a media type, a mapping, a limit). This makes one mutant per
small change of such a constant, as the mutated module's source text:

* regex patterns (strings that reach `re.compile`): drop a member of a character class,
  `+` ↔ `*`, drop a `?`, move a `{m,n}` bound by one, drop a branch of an alternation,
  `\\.` → `.`, change a literal character;
* other strings (and the literal parts of f-strings): change one character; network
  strings (`169.254.0.0/16`) get their prefix length moved by one instead;
* integers assigned directly: one more and one less;
* sets, tuples and lists: drop each element; dicts: drop each entry, and give each key
  the next entry's value.

Each mutant is named `CONSTANT: change`, which stays the same as long as the constant
does, so a list of equivalent mutants can refer to it.
"""

from __future__ import annotations

import ast
import copy
import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass

NodePath = tuple[tuple[str, int | None], ...]


@dataclass(frozen=True)
class ConstantMutant:
    constant: str
    line: int
    change: str
    source: str

    @property
    def identity(self) -> str:
        return f"{self.constant}: {self.change}"


# --------------------------------------------------------------------------- text changes


def _other(char: str) -> str:
    """A character that is not `char` and changes the meaning of most text."""
    if char.isdigit():
        return "7" if char != "7" else "3"
    if char.isalpha():
        return "x" if char.lower() != "x" else "q"
    return "#" if char != "#" else "_"


def _window(text: str, start: int, end: int, replacement: str) -> tuple[str, str]:
    """The changed part of `text` with a little context, before and after the change."""
    left, right = max(0, start - 6), min(len(text), end + 6)
    before = text[left:right]
    after = text[left:start] + replacement + text[end:right]
    return before, after


def _edit(text: str, start: int, end: int, replacement: str) -> tuple[str, str]:
    """(new text, description) for replacing text[start:end]."""
    before, after = _window(text, start, end, replacement)
    return text[:start] + replacement + text[end:], f"{before!r} → {after!r}"


def string_changes(text: str) -> Iterator[tuple[str, str]]:
    """One changed character in the middle of a plain string."""
    if not text:
        return
    middle = len(text) // 2
    yield _edit(text, middle, middle + 1, _other(text[middle]))


def network_changes(text: str) -> Iterator[tuple[str, str]] | None:
    """A network's prefix length one longer and one shorter (only valid networks)."""
    if "/" not in text:
        return None
    try:
        network = ipaddress.ip_network(text)
    except ValueError:
        return None
    changes = []
    slash = text.rindex("/")
    for length in (network.prefixlen + 1, network.prefixlen - 1):
        candidate = f"{text[:slash]}/{length}"
        try:
            ipaddress.ip_network(candidate)
        except ValueError:
            continue
        changes.append(_edit(text, slash + 1, len(text), str(length)))
    return iter(changes)


_QUANTIFIER_BOUNDS = re.compile(r"\{(\d+)(?:(,)(\d*))?\}")


def _class_members(body: str) -> list[tuple[int, int]]:
    """(start, end) of each member of a character class body: `a-z`, `\\s`, `_`."""
    members, i = [], 0
    if body.startswith("^"):
        i = 1
    while i < len(body):
        start = i
        i += 2 if body[i] == "\\" else 1
        if i + 1 < len(body) and body[i] == "-":
            i += 2 if body[i + 1] == "\\" else 1
            i += 1
        members.append((start, min(i, len(body))))
    return members


def _groups(pattern: str) -> list[tuple[int, int]]:
    """(open, close) index pairs of parentheses, plus the whole pattern as (-1, len)."""
    pairs, stack, i, in_class = [(-1, len(pattern))], [], 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]":
                i += 1
        elif char == "(":
            stack.append(i)
        elif char == ")" and stack:
            pairs.append((stack.pop(), i))
        i += 1
    return pairs


def regex_changes(pattern: str) -> Iterator[tuple[str, str]]:
    """Small changes of a regular expression (or of a fragment of one)."""
    i, previous_atom = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if pattern[i + 1 : i + 2] == ".":
                yield _edit(pattern, i, i + 2, ".")
            i, previous_atom = i + 2, True
            continue
        if char == "[":
            end = i + 1
            if pattern[end : end + 1] == "^":
                end += 1
            if pattern[end : end + 1] == "]":
                end += 1
            while end < len(pattern) and pattern[end] != "]":
                end += 2 if pattern[end] == "\\" else 1
            body_start = i + 1
            members = _class_members(pattern[body_start:end])
            if len(members) > 1:
                for start, stop in members:
                    yield _edit(pattern, body_start + start, body_start + stop, "")
            i, previous_atom = end + 1, True
            continue
        if char in "+*" and previous_atom:
            yield _edit(pattern, i, i + 1, "*" if char == "+" else "+")
            previous_atom = False
            i += 1
            if pattern[i : i + 1] == "?":  # lazy modifier: part of the quantifier
                i += 1
            continue
        if char == "?" and previous_atom:
            yield _edit(pattern, i, i + 1, "")
            previous_atom = False
            i += 1
            continue
        bounds = _QUANTIFIER_BOUNDS.match(pattern, i) if char == "{" and previous_atom else None
        if bounds:
            low, comma, high = int(bounds[1]), bounds[2], bounds[3]
            if not comma:
                options = [f"{{{low - 1}}}", f"{{{low + 1}}}"] if low > 1 else [f"{{{low + 1}}}"]
            else:
                top = int(high) if high else None
                options = []
                if top is not None and top - 1 >= low:
                    options.append(f"{{{low},{top - 1}}}")
                if top is not None:
                    options.append(f"{{{low},{top + 1}}}")
                if top is None or low + 1 <= top:
                    options.append(f"{{{low + 1},{high}}}")
                if low > 0:
                    options.append(f"{{{low - 1},{high}}}")
            for option in options:
                yield _edit(pattern, i, bounds.end(), option)
            i, previous_atom = bounds.end(), False
            continue
        if char == "(":
            i += 3 if pattern[i + 1 : i + 3] == "?:" else 1
            previous_atom = False
            continue
        if char == ")":
            i, previous_atom = i + 1, True
            continue
        if char in "|^$.":
            i, previous_atom = i + 1, char == "."
            continue
        # A literal character: changed, once per run of letters and digits.
        run_end = i
        while run_end < len(pattern) and pattern[run_end].isalnum():
            run_end += 1
        if run_end > i:
            middle = (i + run_end - 1) // 2
            yield _edit(pattern, middle, middle + 1, _other(pattern[middle]))
            i, previous_atom = run_end, True
            continue
        if char in ":-=/@,":
            yield _edit(pattern, i, i + 1, _other(char))
        i, previous_atom = i + 1, True
    yield from _branch_drops(pattern)


def _branch_drops(pattern: str) -> Iterator[tuple[str, str]]:
    """Each branch of each alternation left out."""
    for open_, close in _groups(pattern):
        start = open_ + 1
        if pattern[start : start + 2] == "?:":
            start += 2
        bars, depth, i, in_class = [], 0, start, False
        while i < close:
            char = pattern[i]
            if char == "\\":
                i += 2
                continue
            if in_class:
                in_class = char != "]"
            elif char == "[":
                in_class = True
            elif char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth < 0:  # a fragment closing a group opened elsewhere
                    break
            elif char == "|" and depth == 0:
                bars.append(i)
            i += 1
        if not bars or depth < 0:
            continue
        edges = [start - 1, *bars, close]
        for number in range(len(edges) - 1):
            left, right = edges[number], edges[number + 1]
            if number == 0:
                yield _edit(pattern, left + 1, right + 1, "")  # the branch and the bar after it
            else:
                yield _edit(pattern, left, right, "")  # the bar before it and the branch


# --------------------------------------------------------------------------- syntax tree


def _walk(node: ast.AST, path: NodePath = ()) -> Iterator[tuple[NodePath, ast.AST, ast.AST | None]]:
    """(path, node, parent) of every node under `node`."""
    yield path, node, None
    for field, value in ast.iter_fields(node):
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            if isinstance(item, ast.AST):
                sub = (*path, (field, index if isinstance(value, list) else None))
                for deeper, child, parent in _walk(item, sub):
                    yield deeper, child, parent if parent is not None else node


def _at(root: ast.AST, path: NodePath) -> ast.AST:
    node = root
    for field, index in path:
        value = getattr(node, field)
        node = value[index] if index is not None else value
    return node


def _replaced(root: ast.AST, path: NodePath, new: ast.AST | None) -> ast.AST:
    """A copy of `root` with the node at `path` replaced (or removed from its list)."""
    root = copy.deepcopy(root)
    if not path:
        return new
    parent = _at(root, path[:-1])
    field, index = path[-1]
    if index is None:
        setattr(parent, field, new)
    elif new is None:
        del getattr(parent, field)[index]
    else:
        getattr(parent, field)[index] = new
    return root


def _is_re_compile(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "compile"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "re"
    )


def _regex_names(tree: ast.Module) -> set[str]:
    """Names of constants that are (parts of) patterns given to `re.compile`."""
    names = set()
    for node in ast.walk(tree):
        if _is_re_compile(node):
            for arg in node.args[:1]:
                names |= {n.id for n in ast.walk(arg) if isinstance(n, ast.Name)}
    return names


def _constants(tree: ast.Module) -> Iterator[tuple[str, ast.expr, int]]:
    """(name, value, line) of each module-level `NAME = value` (annotated or not)."""
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, value = statement.target, statement.value
        else:
            continue
        if isinstance(target, ast.Name) and not isinstance(value, ast.Subscript | ast.BinOp):
            yield target.id, value, statement.lineno  # (type aliases are left alone)


_CONTAINERS = (ast.Set, ast.Tuple, ast.List, ast.Dict)


def _value_changes(value: ast.expr, regex: bool) -> Iterator[tuple[str, ast.expr]]:
    """(description, changed value) for every small change of one constant's value."""
    for path, node, parent in _walk(value):
        in_regex = regex or any(_is_re_compile(_at(value, path[:n])) for n in range(len(path)))
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if isinstance(parent, _CONTAINERS):
                continue  # dropping the element covers it
            text = node.value
            changes = network_changes(text) if isinstance(parent, ast.Call) else None
            if changes is None:
                changes = regex_changes(text) if in_regex else string_changes(text)
            for new_text, description in changes:
                yield description, _replaced(value, path, ast.Constant(new_text))
        elif isinstance(node, ast.Constant) and type(node.value) is int and not path:
            for new_number in (node.value + 1, node.value - 1):
                yield f"{node.value} → {new_number}", ast.Constant(new_number)
        elif isinstance(node, ast.Set | ast.Tuple | ast.List):
            for index, element in enumerate(node.elts):
                yield (
                    f"drop {ast.unparse(element)}",
                    _replaced(value, (*path, ("elts", index)), None),
                )
        elif isinstance(node, ast.Dict):
            count = len(node.keys)
            for index in range(count):
                key = ast.unparse(node.keys[index])
                dropped = copy.deepcopy(value)
                target = _at(dropped, path)
                del target.keys[index], target.values[index]
                yield f"drop {key}", dropped
                other = node.values[(index + 1) % count]
                if count > 1 and ast.dump(other) != ast.dump(node.values[index]):
                    swapped = _replaced(value, (*path, ("values", index)), copy.deepcopy(other))
                    yield (
                        f"{key}: {ast.unparse(node.values[index])} → {ast.unparse(other)}",
                        swapped,
                    )


def _source_with(source: str, node: ast.expr, new: ast.expr) -> str:
    """`source` with the text of `node` replaced by the text of `new`."""
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line.encode()))
    data = source.encode()
    start = offsets[node.lineno - 1] + node.col_offset
    end = offsets[node.end_lineno - 1] + node.end_col_offset
    return (data[:start] + ast.unparse(new).encode() + data[end:]).decode()


def mutants(source: str) -> list[ConstantMutant]:
    """Every constant mutant of a module's source."""
    tree = ast.parse(source)
    regex_names = _regex_names(tree)
    found = []
    for name, value, line in _constants(tree):
        for change, new in _value_changes(value, regex=name in regex_names):
            mutated = _source_with(source, value, new)
            if mutated != source:
                found.append(ConstantMutant(name, line, change, mutated))
    return found
