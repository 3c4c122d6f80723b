"""Load plant and policy YAML files; every error names file, line and field.

A file is read twice only when it has an error. First libyaml's parse events become plain data
directly (`yaml_events`), and pydantic and the cross-reference checks run on that. If anything is
wrong, the file's node tree is composed (libyaml's composer, or PyYAML's for text libyaml refuses,
so syntax messages stay PyYAML's): it keeps the start mark of every node, and each pydantic error
location (and each problem of `plant_problems`) is walked down it to find its line. All errors of
a file are collected and raised together as one `ConfigFileError`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.constructor import ConstructorError

from hazardwatch.errors import ConfigError
from hazardwatch.plant.checks import Loc, format_loc, plant_problems
from hazardwatch.plant.model import SHARE_EQUAL, Plant
from hazardwatch.plant.policy import PolicyFile
from hazardwatch.plant.yaml_events import MAX_DEPTH, TooDeepError, gc_paused, parse_events

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One error in a configuration file; `line` is 1-based."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        field = f" {self.field}:" if self.field else ""
        return f"{self.file}:{self.line}:{field} {self.message}"


class ConfigFileError(ConfigError):
    """A configuration file is invalid; `issues` lists every error found, in line order."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.file, i.line, i.field))
        super().__init__("\n".join(str(issue) for issue in self.issues))


def _key_nodes(node: yaml.MappingNode) -> dict[object, tuple[yaml.Node, yaml.Node]]:
    return {k.value: (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def locate(tree: SourceTree | yaml.Node | None, loc: Loc) -> tuple[int, str]:
    """Line (1-based) and dotted field of `loc` in a file's YAML tree (or below a node)."""
    root = tree.root if isinstance(tree, SourceTree) else tree
    if root is None:
        return 1, format_loc(loc)
    node, line = root, root.start_mark.line + 1
    path: list[str | int] = []
    parts = list(loc)
    for i, part in enumerate(parts):
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
            path.append(part)
        elif isinstance(node, yaml.MappingNode) and isinstance(part, str):
            keys = _key_nodes(node)
            if part in keys:
                key_node, value_node = keys[part]
                if i + 1 < len(parts) and parts[i + 1] == "[key]":
                    return key_node.start_mark.line + 1, format_loc([*path, part])
                node, line = value_node, key_node.start_mark.line + 1
                path.append(part)
            elif "kind" in keys and keys["kind"][1].value == part:
                continue  # discriminated-union tag that pydantic puts into the location
            else:
                path.append(part)  # a missing field: report it at its parent mapping
                break
        else:
            break  # union-member names and the like below a scalar: not in the file
    return line, format_loc(path)


def _duplicate_keys(root: yaml.Node | None, file: str) -> list[ConfigIssue]:
    """PyYAML silently keeps the last of two equal keys; a config file must not have them."""
    issues: list[ConfigIssue] = []
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: set[object] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        issues.append(
                            ConfigIssue(
                                file, key.start_mark.line + 1, str(key.value), "duplicate key"
                            )
                        )
                    seen.add(key.value)
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return issues


# The line breaks YAML counts (YAML 1.1 §5.4), so the line matches PyYAML's own marks.
_YAML_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")


def _line_at(text: str, position: int) -> int:
    return len(_YAML_BREAK.findall(text, 0, position)) + 1


def _checked_timestamp(loader: _PyLines | _CLines, node: yaml.ScalarNode) -> Any:
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError as exc:  # `2024-13-45` looks like a date to the resolver, not to datetime
        problem = f"invalid date {node.value!r} ({exc})"
        raise ConstructorError(None, None, problem, node.start_mark) from exc


class _PyLines(yaml.SafeLoader):
    """PyYAML's own parser: its messages for files libyaml refuses."""


class _CLines(yaml.CSafeLoader):
    """libyaml's parser and composer: the same node tree and marks, several times faster."""


for _loader in (_PyLines, _CLines):
    _loader.add_constructor("tag:yaml.org,2002:timestamp", _checked_timestamp)


_Composed = tuple[yaml.Node | None, Any, list[ConfigIssue]]


def _compose_with(loader: _PyLines | _CLines, file: str, construct: bool) -> _Composed:
    """Root node, data (with `construct`) and duplicate keys — found before the constructor
    merges `<<:` keys into their mappings' nodes, which would look like duplicates."""
    try:
        root = loader.get_single_node()
        duplicates = _duplicate_keys(root, file)
        data = loader.construct_document(root) if construct and root is not None else None
    finally:
        loader.dispose()
    return root, data, duplicates


def _compose_python(text: str, file: str, construct: bool) -> _Composed:
    try:
        loader = _PyLines(text)  # the reader checks every character here already
    except yaml.reader.ReaderError as exc:  # a character YAML forbids (e.g. \x0b pasted in)
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        problem = f"YAML syntax: character U+{ord(char):04X} is not allowed"
        line = _line_at(text, exc.position)
        raise ConfigFileError([ConfigIssue(file, line, "", problem)]) from exc
    try:
        return _compose_with(loader, file, construct)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigFileError([ConfigIssue(file, line, "", f"YAML syntax: {exc.problem}")]) from exc
    except RecursionError as exc:  # only if PyYAML reads deeper than libyaml before its error
        problem = f"YAML syntax: nested deeper than {MAX_DEPTH} levels"
        raise ConfigFileError([ConfigIssue(file, 1, "", problem)]) from exc


class SourceTree:
    """The YAML node tree of a file, whose marks give every value's line; composed on first use,
    so a valid file loaded on the fast path never builds it."""

    def __init__(self, text: str, file: str, libyaml: bool) -> None:
        self._text, self._file, self._libyaml = text, file, libyaml
        self._root: yaml.Node | None = None
        self.composed = False
        self.duplicate_keys: list[ConfigIssue] = []

    def compose(self, construct: bool = False) -> Any:
        """Compose the tree now; with `construct`, return the document's data too."""
        with gc_paused():
            if self._libyaml:  # the fast path read the whole file: no nesting beyond MAX_DEPTH
                try:
                    composed = _compose_with(_CLines(self._text), self._file, construct)
                except yaml.YAMLError:  # composer errors (aliases, documents): PyYAML's words
                    self._libyaml = False
            if not self._libyaml:
                composed = _compose_python(self._text, self._file, construct)
        self._root, data, self.duplicate_keys = composed
        self.composed = True
        return data

    @property
    def root(self) -> yaml.Node | None:
        """The document's root node (None for an empty document)."""
        if not self.composed:
            self.compose()
        return self._root


def _parse(text: str, file: str) -> tuple[SourceTree, Any]:
    """The file's data and its (lazy) node tree: libyaml's events straight to data when they
    allow it, the node tree otherwise (see yaml_events). Where the two parsers disagree (tabs,
    characters libyaml refuses), PyYAML decides, as it did before libyaml was used."""
    if "\t" in text:  # PyYAML refuses a tab outside quotes and comments, libyaml often takes it
        tree = SourceTree(text, file, libyaml=False)
        return tree, tree.compose(construct=True)
    try:
        parsed = parse_events(text)
    except TooDeepError as exc:
        raise ConfigFileError([ConfigIssue(file, exc.line, "", f"YAML syntax: {exc}")]) from exc
    except (yaml.YAMLError, ValueError):  # libyaml refuses the text: PyYAML says where and why
        tree = SourceTree(text, file, libyaml=False)
        return tree, tree.compose(construct=True)
    tree = SourceTree(text, file, libyaml=True)
    if parsed.needs_tree:
        return tree, tree.compose(construct=True)
    return tree, parsed.data


def _read(path: Path, file: str) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigFileError([ConfigIssue(file, 1, "", f"cannot read: {exc.strerror}")]) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = raw[: exc.start].decode("utf-8")  # the text before the first bad byte
        problem = f"cannot read: not UTF-8 (byte 0x{raw[exc.start]:02X})"
        raise ConfigFileError([ConfigIssue(file, _line_at(head, len(head)), "", problem)]) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")  # as text mode reads it


def _has_child_error(loc: tuple[str | int, ...], errors: Sequence[Any]) -> bool:
    return any(len(e["loc"]) > len(loc) and tuple(e["loc"][: len(loc)]) == loc for e in errors)


def _message(error: dict[str, Any]) -> str:
    msg = str(error["msg"])
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def validate_file(
    path: Path, model: type[ModelT], context: dict[str, Any] | None = None
) -> tuple[ModelT, SourceTree, str]:
    """Read and validate a YAML file into `model`: the instance, the file's node tree (for
    `locate`, composed only when asked for) and the file name; raises ConfigFileError."""
    file = str(path)
    text = _read(path, file)
    with gc_paused():
        tree, data = _parse(text, file)
        if data is None:
            raise ConfigFileError([ConfigIssue(file, 1, "", "file is empty")])
        issues = list(tree.duplicate_keys)  # none if the fast path read the file
        try:
            instance = model.model_validate(data, context=context)
        except ValidationError as exc:
            raise ConfigFileError(issues + _validation_issues(exc, tree, file)) from exc
    if issues:
        raise ConfigFileError(issues)
    return instance, tree, file


def _validation_issues(exc: ValidationError, tree: SourceTree, file: str) -> list[ConfigIssue]:
    merged: dict[tuple[int, str], list[str]] = {}
    errors = exc.errors()
    for error in errors:
        if error["type"] == "too_short" and _has_child_error(error["loc"], errors):
            continue  # pydantic counts failed items as missing: the item errors say it all
        line, field = locate(tree, tuple(error["loc"]))
        messages = merged.setdefault((line, field), [])
        if _message(dict(error)) not in messages:  # union members repeat themselves
            messages.append(_message(dict(error)))
    return [ConfigIssue(file, ln, fd, "; or ".join(ms)) for (ln, fd), ms in merged.items()]


def load_plant(path: str | Path) -> Plant:
    """Load and fully check a plant file; raises ConfigFileError listing every problem."""
    with gc_paused():
        context = {"cross_checks": False, SHARE_EQUAL: {}}
        plant, tree, file = validate_file(Path(path), Plant, context=context)
        problems = plant_problems(plant)
        if problems:
            issues = []
            for problem in problems:
                line, _ = locate(tree, problem.loc)
                issues.append(ConfigIssue(file, line, problem.field, problem.message))
            raise ConfigFileError(issues)
    return plant


def load_policy(path: str | Path) -> PolicyFile:
    """Load a policy file (`risk:` checked, `routing:` kept as-is); raises ConfigFileError."""
    policy, _tree, _file = validate_file(Path(path), PolicyFile)
    return policy
