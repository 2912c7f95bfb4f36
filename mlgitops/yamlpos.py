"""Load YAML while remembering where every key and value sits.

PyYAML's composer keeps a start mark on every node; we walk the node tree once to
build a ``{key path: (line, column)}`` index so that schema errors can point at
``mlops.yaml:12:7`` the way DVC and pre-commit do. Duplicate keys, which PyYAML
silently collapses (the last one wins), are reported instead: a second ``gates:``
block must never quietly replace the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path_ = tuple[Any, ...]


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
    def __init__(self, line: int, column: int, problem: str) -> None:
        super().__init__(problem)
        self.line = line
        self.column = column
        self.problem = problem


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def load_with_positions(text: str) -> tuple[Any, Positions]:
    """Parse ``text``; return the plain data and the position index."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or str(exc)
        if exc.context:
            problem = f"{problem} ({exc.context})"
        raise YamlSyntaxError(line, col, problem) from None
    except yaml.YAMLError as exc:  # pragma: no cover - every PyYAML error is marked today
        raise YamlSyntaxError(1, 1, str(exc)) from None
    positions = Positions()
    if node is not None:
        _walk(node, (), positions)
    return data, positions


def _walk(node: yaml.Node, path: Path_, pos: Positions) -> None:
    pos.values[path] = _mark(node)
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
            _walk(value_node, child, pos)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            pos.keys[path + (i,)] = _mark(item)
            _walk(item, path + (i,), pos)
