"""Load plant and policy YAML files; every error names file, line and field.

PyYAML's composer keeps the start mark of every node; each pydantic error location (and each
cross-reference problem of `plant_problems`) is walked down that node tree to find its line.
All errors of a file are collected and raised together as one `ConfigFileError`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from hazardwatch.errors import ConfigError
from hazardwatch.plant.checks import Loc, format_loc, plant_problems
from hazardwatch.plant.model import Plant
from hazardwatch.plant.policy import PolicyFile

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


def locate(root: yaml.Node | None, loc: Loc) -> tuple[int, str]:
    """Line (1-based) and dotted field of `loc` in the YAML tree rooted at `root`."""
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


def _compose(text: str, file: str) -> tuple[yaml.Node | None, Any]:
    try:
        loader = yaml.SafeLoader(text)  # the reader checks every character here already
    except yaml.reader.ReaderError as exc:  # a character YAML forbids (e.g. \x0b pasted in)
        line = len(_YAML_BREAK.findall(text, 0, exc.position)) + 1
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        problem = f"YAML syntax: character U+{ord(char):04X} is not allowed"
        raise ConfigFileError([ConfigIssue(file, line, "", problem)]) from exc
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigFileError([ConfigIssue(file, line, "", f"YAML syntax: {exc.problem}")]) from exc
    finally:
        loader.dispose()
    return root, data


def _has_child_error(loc: tuple[str | int, ...], errors: Sequence[Any]) -> bool:
    return any(len(e["loc"]) > len(loc) and tuple(e["loc"][: len(loc)]) == loc for e in errors)


def _message(error: dict[str, Any]) -> str:
    msg = str(error["msg"])
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def validate_file(
    path: Path, model: type[ModelT], context: dict[str, Any] | None = None
) -> tuple[ModelT, yaml.Node | None, str]:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError([ConfigIssue(file, 1, "", f"cannot read: {exc.strerror}")]) from exc
    root, data = _compose(text, file)
    if data is None:
        raise ConfigFileError([ConfigIssue(file, 1, "", "file is empty")])
    issues = _duplicate_keys(root, file)
    try:
        instance = model.model_validate(data, context=context)
    except ValidationError as exc:
        merged: dict[tuple[int, str], list[str]] = {}
        errors = exc.errors()
        for error in errors:
            if error["type"] == "too_short" and _has_child_error(error["loc"], errors):
                continue  # pydantic counts failed items as missing: the item errors say it all
            line, field = locate(root, tuple(error["loc"]))
            messages = merged.setdefault((line, field), [])
            if _message(dict(error)) not in messages:  # union members repeat themselves
                messages.append(_message(dict(error)))
        issues += [ConfigIssue(file, ln, fd, "; or ".join(ms)) for (ln, fd), ms in merged.items()]
        raise ConfigFileError(issues) from exc
    if issues:
        raise ConfigFileError(issues)
    return instance, root, file


def load_plant(path: str | Path) -> Plant:
    """Load and fully check a plant file; raises ConfigFileError listing every problem."""
    plant, root, file = validate_file(Path(path), Plant, context={"cross_checks": False})
    problems = plant_problems(plant)
    if problems:
        issues = []
        for problem in problems:
            line, _ = locate(root, problem.loc)
            issues.append(ConfigIssue(file, line, problem.field, problem.message))
        raise ConfigFileError(issues)
    return plant


def load_policy(path: str | Path) -> PolicyFile:
    """Load a policy file (`risk:` checked, `routing:` kept as-is); raises ConfigFileError."""
    policy, _root, _file = validate_file(Path(path), PolicyFile)
    return policy
