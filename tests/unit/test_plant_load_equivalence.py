"""The fast loader answers exactly as PyYAML's own parser and composer did: same data, same node
lines, same plant or the same file:line:field issues, on the example files and on the security
fuzzer's mutations of them (tests/security/fuzz.py strategies, a small budget)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hazardwatch.plant import loader
from hazardwatch.plant.yaml_events import parse_events
from tests.security.fuzz import _seed_documents, structural, textual

ROOT = Path(__file__).parents[2]
SEEDS = _seed_documents()
DOCUMENTS = st.one_of(
    *[structural(kind, text) for kind, text in SEEDS["plant"]],
    *[textual(text) for _kind, text in SEEDS["plant"]],
).map(lambda text: ("plant", text)) | st.one_of(
    *[structural(kind, text) for kind, text in SEEDS["policy"]],
    *[textual(text) for _kind, text in SEEDS["policy"]],
).map(lambda text: ("policy", text))


def node_marks(node: yaml.Node | None) -> list[tuple[str, str, int]]:
    """Every node in document order: kind, tag and line of its start.

    Not the column: libyaml and PyYAML count a U+FEFF inside a line differently (this test
    found it), and the loader reports lines only."""
    out: list[tuple[str, str, int]] = []
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop()
        out.append((type(current).__name__, current.tag, *_start(current)))
        if isinstance(current, yaml.MappingNode):
            stack.extend(reversed([part for pair in current.value for part in pair]))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(reversed(current.value))
    return out


def _start(node: yaml.Node) -> tuple[int]:
    return (node.start_mark.line,)


def compose(text: str, loader_class: Any) -> yaml.Node | None:
    parser = loader_class(text)
    try:
        return parser.get_single_node()  # type: ignore[no-any-return]
    finally:
        parser.dispose()


def outcome(load: Callable[[Path], Any], path: Path) -> tuple[str, Any]:
    try:
        return "loaded", load(path).model_dump()
    except loader.ConfigFileError as exc:
        return "refused", [(i.file, i.line, i.field, i.message) for i in exc.issues]


def pyyaml_only(text: str) -> Any:
    raise yaml.YAMLError("fast path off")  # the loader then composes with PyYAML's parser


def check_document(kind: str, text: str, folder: Path) -> None:
    try:
        parsed = parse_events(text)
    except (yaml.YAMLError, ValueError):
        parsed = None  # libyaml refuses it: the loader lets PyYAML answer
    try:
        reference = yaml.load(text, Loader=yaml.SafeLoader)
        python_root = compose(text, yaml.SafeLoader)
    except (yaml.YAMLError, ValueError, RecursionError):
        reference = python_root = None
    if parsed is not None and python_root is not None and "\t" not in text:
        if not parsed.needs_tree:
            assert parsed.data == reference
        assert node_marks(compose(text, yaml.CSafeLoader)) == node_marks(python_root)
    path = folder / f"{kind}.yaml"
    path.write_text(text, encoding="utf-8")
    load = loader.load_plant if kind == "plant" else loader.load_policy
    fast = outcome(load, path)
    with mock.patch.object(loader, "parse_events", pyyaml_only):
        assert fast == outcome(load, path)


@pytest.mark.parametrize("name", ["tank-farm", "chemical-process", "steel-plant", "policy"])
def test_example_files_load_alike(name: str, tmp_path: Path) -> None:
    text = (ROOT / "examples" / f"{name}.yaml").read_text(encoding="utf-8")
    check_document("policy" if name == "policy" else "plant", text, tmp_path)
    assert not parse_events(text).needs_tree  # the examples take the fast path


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(document=DOCUMENTS)
def test_mutated_files_load_alike(document: tuple[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix="hw-equivalence-") as folder:
        check_document(*document, Path(folder))
