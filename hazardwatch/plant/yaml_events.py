"""Plain data straight from libyaml's parse events, without a node tree: the loader's fast path.

PyYAML's composer builds a node with two line marks per value before its constructor turns the
tree into dicts and lists; for a 100,000-tag plant that tree is most of the load time and over a
gigabyte of memory. Here the C parser's events become dicts, lists and scalars directly, with
`yaml.SafeLoader`'s tag resolution and scalar constructors, so the data is the data
`yaml.safe_load` returns. What this builder does not reproduce exactly (anchors, aliases, explicit
tags, merge keys, timestamps, keys that are not plain strings, duplicate keys, several documents)
sets `needs_tree`: the loader then composes the node tree. Either way the builder reads to the end
of the stream so that nesting deeper than `MAX_DEPTH` is refused before any recursive composer
sees it (libyaml's composer recurses in C and crashes the process on deep enough input).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml import events

MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences a configuration file may have (a plant needs 8)."""

_TAG = "tag:yaml.org,2002:"
_MISS = object()  # not in the scalar cache / no key pending


class TooDeepError(Exception):
    """Nesting deeper than MAX_DEPTH; `line` (1-based) is where it went one level too deep."""

    def __init__(self, line: int) -> None:
        self.line = line
        super().__init__(f"nested deeper than {MAX_DEPTH} levels")


@dataclass(frozen=True, slots=True)
class EventParse:
    """The document's data (None if empty) or, with `needs_tree`, no data: compose the tree."""

    data: Any
    needs_tree: bool


def parse_events(text: str) -> EventParse:
    """Parse `text` with libyaml; raises yaml.YAMLError (or ValueError) if libyaml refuses it,
    TooDeepError past MAX_DEPTH."""
    loader = yaml.CSafeLoader(text)
    try:
        return _build(loader)
    finally:
        loader.dispose()


def _plain_scalar(loader: yaml.CSafeLoader, value: str) -> Any:
    """The value of an untagged plain scalar as SafeLoader constructs it; _MISS if this builder
    leaves the kind (timestamp, merge key `<<`, `=`) to the node tree."""
    tag = loader.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    if tag == _TAG + "str":
        return value
    if tag == _TAG + "null":
        return None
    if tag == _TAG + "bool":
        return loader.bool_values[value.lower()]
    if tag == _TAG + "int":
        return loader.construct_yaml_int(yaml.ScalarNode(tag, value))
    if tag == _TAG + "float":
        return loader.construct_yaml_float(yaml.ScalarNode(tag, value))
    return _MISS


def _build(loader: yaml.CSafeLoader) -> EventParse:
    # One hot loop over ~7 events per value of a plant file: locals only, no helper calls on the
    # common path. Plain scalars repeat a lot (quantities, units, limits), so each distinct one is
    # resolved once; the cache also makes equal strings one object in the data.
    get_event: Callable[[], Any] = loader.get_event
    scalar_event, alias_event = events.ScalarEvent, events.AliasEvent
    map_start, seq_start = events.MappingStartEvent, events.SequenceStartEvent
    map_end, seq_end = events.MappingEndEvent, events.SequenceEndEvent
    doc_start, stream_end = events.DocumentStartEvent, events.StreamEndEvent
    plain: dict[str, Any] = {}
    stack: list[tuple[Any, Any]] = []
    container: Any = None  # the dict or list being filled; None at the document level
    key: Any = _MISS  # the pending key of `container` when it is a dict
    root: Any = None
    documents = 0
    while True:
        event = get_event()
        kind = type(event)
        if kind is scalar_event:
            if event.anchor is not None or event.tag is not None:
                return _scan_rest(get_event, len(stack))
            if event.implicit[0]:
                value = plain.get(event.value, _MISS)
                if value is _MISS:
                    value = plain[event.value] = _plain_scalar(loader, event.value)
                    if value is _MISS:
                        return _scan_rest(get_event, len(stack))
                is_key = type(value) is str
            else:
                value = event.value
                is_key = False  # a quoted key may equal a plain one of another type
        elif kind is map_start or kind is seq_start:
            if len(stack) >= MAX_DEPTH:
                raise TooDeepError(event.start_mark.line + 1)
            if event.anchor is not None or event.tag is not None:
                return _scan_rest(get_event, len(stack))
            if key is _MISS and type(container) is dict:
                return _scan_rest(get_event, len(stack))  # a mapping or sequence as a key
            stack.append((container, key))
            container, key = ({} if kind is map_start else []), _MISS
            continue
        elif kind is map_end or kind is seq_end:
            value = container
            container, key = stack.pop()
            is_key = False
        elif kind is alias_event:
            return _scan_rest(get_event, len(stack))
        elif kind is doc_start:
            documents += 1
            if documents > 1:
                return _scan_rest(get_event, len(stack))
            continue
        elif kind is stream_end:
            return EventParse(root, needs_tree=False)
        else:
            continue  # stream start, document end
        if container is None:
            root = value
        elif type(container) is list:
            container.append(value)
        elif key is _MISS:
            if not is_key or value in container:
                return _scan_rest(get_event, len(stack))
            key = value
        else:
            container[key] = value
            key = _MISS


def _scan_rest(get_event: Callable[[], Any], depth: int) -> EventParse:
    """Read the remaining events for their nesting only; the caller composes the tree."""
    starts = (events.MappingStartEvent, events.SequenceStartEvent)
    ends = (events.MappingEndEvent, events.SequenceEndEvent)
    while True:
        event = get_event()
        kind = type(event)
        if kind in starts:
            if depth >= MAX_DEPTH:
                raise TooDeepError(event.start_mark.line + 1)
            depth += 1
        elif kind in ends:
            depth -= 1
        elif kind is events.StreamEndEvent:
            return EventParse(None, needs_tree=True)


class _GcPause:
    """Nestable, thread-safe pause of the cyclic garbage collector."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._resume = False

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._resume = gc.isenabled()
                gc.disable()
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0 and self._resume:
                    gc.enable()


gc_paused = _GcPause()
"""`with gc_paused():` — no cyclic collection meanwhile. Loading allocates millions of objects
and no cycles; each full collection would walk all of them again (a 100,000-tag plant loaded
three times slower with the collector on)."""
