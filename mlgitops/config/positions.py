"""Load YAML while remembering where every key and value sits, within fixed bounds.

PyYAML's composer keeps a start mark on every node; we walk the node tree once to
build a ``{key path: (line, column)}`` index so that schema errors can point at
``mlops.yaml:12:7`` the way DVC and pre-commit do. Duplicate keys, which PyYAML
silently collapses (the last one wins), are reported instead: a second ``gates:``
block must never quietly replace the first.

A pull request can change any YAML the tool reads, so size, nesting depth and alias
expansion are bounded while the document is composed (issue 11): a 600-byte alias
bomb ("billion laughs") is refused at the alias that would expand it, before any
expanded structure exists, and deep nesting stops at the first level too many
instead of exhausting Python's recursion limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent
from yaml.resolver import Resolver

Path_ = tuple[Any, ...]

MAX_BYTES = 256 * 1024  # mlops.yaml is a few KiB; a manifest less
MAX_DEPTH = 64  # nesting levels, counted through aliases
MAX_ALIASES = 100  # `*name` references per document
MAX_ALIASED_VALUES = 10_000  # values the aliases stand for, once expanded
REWORD_CHARS = 64 * 1024  # larger files keep libyaml's words for a syntax error (no slow re-scan)

try:  # libyaml's event parser is 5-6x faster than the pure-Python one; the composer stays ours
    from yaml._yaml import CParser  # type: ignore[import-not-found]

    _EVENT_SOURCE: tuple[type, ...] = (CParser,)

    def _init_events(loader: Any, text: str) -> None:
        CParser.__init__(loader, text)

except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    _EVENT_SOURCE = (Reader, Scanner, Parser)

    def _init_events(loader: Any, text: str) -> None:
        Reader.__init__(loader, text)
        Scanner.__init__(loader)
        Parser.__init__(loader)


@dataclass
class Positions:
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    duplicates: list[tuple[Path_, tuple[int, int]]] = field(default_factory=list)

    def value(self, path: Path_) -> tuple[int, int]:
        """Position of the value at ``path``, or of its nearest existing parent."""
        p = tuple(path)
        while p:
            if p in self.values:
                return self.values[p]
            p = p[:-1]
        return self.values.get((), (1, 1))

    def key(self, path: Path_) -> tuple[int, int]:
        """Position of the key that introduces ``path`` (falls back to the value)."""
        return self.keys.get(tuple(path)) or self.value(path)


class YamlSyntaxError(Exception):
    """The text is not YAML; ``line``/``column`` are 1-based."""

    def __init__(self, line: int, column: int, problem: str) -> None:
        super().__init__(problem)
        self.line = line
        self.column = column
        self.problem = problem


class YamlLimitError(YamlSyntaxError):
    """Valid YAML, but past one of the bounds above; ``hint`` says what to do."""

    def __init__(self, line: int, column: int, problem: str, hint: str) -> None:
        super().__init__(line, column, problem)
        self.hint = hint


def _mark(node: Any) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _BoundedComposer(Composer):
    """PyYAML's composer, counting depth and aliases as it goes.

    An alias resolves to the very node its anchor names (nothing is copied), so what
    it *would* expand to is known when it is met: its target's value count and depth,
    measured once per node.
    """

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._aliases = 0
        self._aliased_values = 0
        self._size: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth) once expanded

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(AliasEvent):
            return self._alias(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlLimitError(mark.line + 1, mark.column + 1, f"nested deeper than {MAX_DEPTH} levels", _DEPTH_HINT)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def _alias(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        line, col = event.start_mark.line + 1, event.start_mark.column + 1
        node = super().compose_node(parent, index)  # PyYAML raises on an undefined alias
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            raise YamlLimitError(line, col, f"more than {MAX_ALIASES} aliases (*{event.anchor} is one too many)", "aliases are meant for a few shared blocks; write the values out")
        if node.end_mark is None:  # PyYAML registers an anchor before its block is complete
            raise YamlLimitError(line, col, f"alias *{event.anchor} refers to a block that contains it", "an alias must name a block that is complete before it")
        values, depth = self._measure(node)
        self._aliased_values += values
        if self._aliased_values > MAX_ALIASED_VALUES:
            raise YamlLimitError(line, col, f"aliases expand to more than {MAX_ALIASED_VALUES:,} values (at *{event.anchor})", 'an alias bomb ("billion laughs") or close to one: write the values out')
        if self._depth + depth > MAX_DEPTH:
            raise YamlLimitError(line, col, f"nested deeper than {MAX_DEPTH} levels (through *{event.anchor})", _DEPTH_HINT)
        return node

    def _measure(self, node: Any) -> tuple[int, int]:
        """(values, depth) of ``node`` with every alias inside it expanded."""
        known = self._size.get(id(node))
        if known is not None:
            return known
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        values, depth = 1, 0
        for child in children:  # recursion stays under MAX_DEPTH: alias targets are measured already
            v, d = self._measure(child)
            values += v
            depth = max(depth, d)
        self._size[id(node)] = (values, depth + 1)
        return values, depth + 1


_DEPTH_HINT = "flatten the structure; a config needs a few levels"


class _Loader(_BoundedComposer, *_EVENT_SOURCE, SafeConstructor, Resolver):  # type: ignore[misc]
    """yaml.SafeLoader's parts, with the bounded composer first in line."""

    def __init__(self, text: str) -> None:
        _init_events(self, text)
        _BoundedComposer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:  # e.g. an integer of 5,000 digits (Python's limit)
            raise ConstructorError(None, None, f"cannot read this value: {exc}", node.start_mark) from None


def check_size(size: int) -> None:
    """Refuse a document larger than :data:`MAX_BYTES` before reading it."""
    if size > MAX_BYTES:
        raise YamlLimitError(1, 1, f"the file is {size:,} bytes; at most {MAX_BYTES // 1024} KiB ({MAX_BYTES:,} bytes) is read", "a config is a few KiB: keep data in files that data.path names")


def compose_bounded(text: str) -> tuple[Any, Any]:
    """(root node or None, the loader that composed it), within the bounds above.

    Raises :class:`YamlSyntaxError` (or its :class:`YamlLimitError`) with a 1-based position.
    """
    check_size(len(text.encode("utf-8", "surrogatepass")))
    loader = _Loader(text)
    try:
        return loader.get_single_node(), loader
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(_python_words(text, exc)) from None
    except yaml.YAMLError as exc:  # pragma: no cover - every PyYAML error is marked today
        raise YamlSyntaxError(1, 1, str(exc)) from None
    finally:
        loader.dispose()


def _python_words(text: str, exc: yaml.MarkedYAMLError) -> yaml.MarkedYAMLError:
    """The same error in PyYAML's pure-Python words, which are more specific than
    libyaml's ("found character '\\t'", "expected <block end>") and the same with or
    without libyaml. Only on the error path, and for files up to REWORD_CHARS."""
    mark = exc.problem_mark
    if mark is not None and "maximum nesting depth" in (exc.problem or ""):
        # libyaml's scanner stops at 1,000 levels of flow nesting, before the composer
        # sees level 65; re-scanning that in Python would take half a second.
        raise YamlLimitError(mark.line + 1, mark.column + 1, f"nested deeper than {MAX_DEPTH} levels", _DEPTH_HINT)
    if len(text) > REWORD_CHARS:
        return exc
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:  # libyaml's scanner gives up on deep flow nesting first
                    mark = event.start_mark
                    raise YamlLimitError(mark.line + 1, mark.column + 1, f"nested deeper than {MAX_DEPTH} levels", _DEPTH_HINT)
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    except yaml.MarkedYAMLError as words:
        return words
    return exc  # a composer error (undefined alias, ...): ours already


def _syntax_error(exc: yaml.MarkedYAMLError) -> YamlSyntaxError:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or str(exc)
    if exc.context:
        problem = f"{problem} ({exc.context})"
    return YamlSyntaxError(line, col, problem)


def check_bounds(text: str) -> None:
    """Raise :class:`YamlSyntaxError` / :class:`YamlLimitError` unless ``text`` is YAML
    within the bounds; for files another YAML library then loads (manifests)."""
    compose_bounded(text)


def load_with_positions(text: str) -> tuple[Any, Positions]:
    """Parse ``text``; return the plain data and the position index."""
    node, loader = compose_bounded(text)
    positions = Positions()
    if node is None:
        return None, positions
    # Walk before constructing: the constructor merges `<<:` keys into the node in place.
    _walk(node, (), positions, set())
    try:
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:  # e.g. a `!!python/object` tag SafeConstructor refuses
        raise _syntax_error(exc) from None
    return data, positions


def _walk(node: yaml.Node, path: Path_, pos: Positions, seen_nodes: set[int]) -> None:
    """Index positions; a node reached again through an alias is not walked twice
    (its keys keep the anchor's positions), and depth is bounded by the composer."""
    pos.values[path] = _mark(node)
    if id(node) in seen_nodes:
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` - the merged keys keep their anchor's positions
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            # Keys are compared as YAML reads them: `1` and `"1"` are different keys.
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:str":
                try:
                    key = yaml.safe_load(yaml.serialize(key_node))
                except yaml.YAMLError:
                    key = key_node.value
            child = path + (key,)
            if key in seen:
                pos.duplicates.append((child, _mark(key_node)))
            seen.add(key)
            pos.keys[child] = _mark(key_node)
            _walk(value_node, child, pos, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            pos.keys[path + (i,)] = _mark(item)
            _walk(item, path + (i,), pos, seen_nodes)
