"""Pins in the deploy target's own files (issue 12).

An environment may name YAML files of its deploy target (a KServe InferenceService, a
Deployment, Helm values) and a key path in each. The promotion PR edits exactly that
value, and optionally sets ``mlgitops.dev/model-sha256`` / ``mlgitops.dev/model-version``
in a mapping such as ``metadata.annotations``, so Argo CD or Flux deploy the merge.

Why the value is spliced into the text rather than re-emitted by ruamel.yaml (which
``manifest.write_pin`` uses for the tool's own manifest): ruamel re-emits a whole
document with one indentation setting. On a kubectl-style Deployment with one changed
env value it re-indented every ``- name:`` list, squeezed ``name:   iris``, joined a
wrapped ``args: [...]`` and dropped a closing ``...``: 11 changed lines in the PR for
one changed value. Here PyYAML (within mlops.yaml's bounds on size, depth and aliases,
:mod:`mlgitops.config.positions`) only finds where the value sits; the new value replaces those
characters and every other byte stays as it was. The edited text is then parsed again
and compared with the original: if anything but the targeted values differs, nothing
is written (an internal error, never a silently reshaped file).

Key paths: ``spec.predictor.model.storageUri``; list items by index ``containers[0]``
or by field ``containers[name=server]``; keys with dots quoted, ``annotations["a.b/c"]``.
"""

from __future__ import annotations

import posixpath
import re
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

import yaml
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from mlgitops.errors import InputError, MlopsError
from mlgitops.config.positions import YamlLimitError, _BoundedComposer, check_size

if TYPE_CHECKING:
    from mlgitops.config.loader import PinFile
    from mlgitops.deploy.manifest import Pin

FIELDS = ("uri", "sha256", "version", "name", "format")
DEFAULT_VALUE = "{uri}"
SHA_ANNOTATION = "mlgitops.dev/model-sha256"
VERSION_ANNOTATION = "mlgitops.dev/model-version"
MAX_KEY_CHARS = 512
MAX_STEPS = 64  # the same depth yamlpos allows
MAX_DOCUMENTS = 1000  # `---`-separated documents in one file
SHOWN = 8  # keys / values listed in an error message
EXAMPLE_KEY = "spec.predictor.model.storageUri"
_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_INT = "tag:yaml.org,2002:int"
DQ = '"'


class PinFileError(InputError):
    """A deploy target's file that cannot take the pin; the message names file:line:col."""


class KeyPathError(ValueError):
    """A key path that does not parse; ``detail`` says where."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


# ---------------------------------------------------------------- key paths


@dataclass(frozen=True)
class Step:
    kind: str  # "key", "index" or "match"
    name: str = ""  # the key, or the selector's field
    index: int = 0
    value: str = ""  # the selector's value

    def show(self, first: bool = False) -> str:
        if self.kind == "index":
            return f"[{self.index}]"
        if self.kind == "match":
            return f"[{self.name}={self.value}]"
        if re.fullmatch(r"[^.\[\]\"'=]+", self.name):
            return self.name if first else f".{self.name}"
        return f'["{self.name}"]'


def show_steps(steps: Iterable[Step]) -> str:
    return "".join(s.show(first=i == 0) for i, s in enumerate(steps))


# Hand-written: the grammar is five rules, and the JSONPath libraries read `..` as
# "any depth" and `[?(...)]` filters, which a pin must never mean.
_NAME = re.compile(r"[^.\[\]\"']+")
_INDEX = re.compile(r"\[(\d+)\]")
_QUOTED_KEY = re.compile(r"\[(\"[^\"]*\"|'[^']*')\]")
_MATCH = re.compile(r"\[([^\[\]=\"'.]*)=(\"[^\"]*\"|'[^']*'|[^\]\"']*)\]")


def parse_key(text: str) -> tuple[Step, ...]:
    """``spec.containers[name=server].env[0].value`` -> steps. Raises :class:`KeyPathError`."""
    if not text:
        raise KeyPathError("it is empty")
    if len(text) > MAX_KEY_CHARS:
        raise KeyPathError(f"it is {len(text)} characters long; at most {MAX_KEY_CHARS}")
    steps: list[Step] = []
    i, n = 0, len(text)
    while i < n:  # every branch consumes at least one character or raises
        at = i + 1
        if text[i] == "[":
            if m := _INDEX.match(text, i):
                steps.append(Step("index", index=int(m.group(1))))
            elif m := _QUOTED_KEY.match(text, i):
                name = m.group(1)[1:-1]
                if not name:
                    raise KeyPathError(f"an empty quoted key at character {at}")
                steps.append(Step("key", name=name))
            elif m := _MATCH.match(text, i):
                field, value = m.group(1).strip(), m.group(2).strip()
                if value[:1] in "\"'" and len(value) >= 2:
                    value = value[1:-1]
                if not field:
                    raise KeyPathError(f"no field name before '=' at character {at}")
                if not value:
                    raise KeyPathError(f"[{field}=] at character {at} has no value to match")
                steps.append(Step("match", name=field, value=value))
            elif "]" not in text[i:]:
                raise KeyPathError(f"the '[' at character {at} is not closed")
            else:
                raise KeyPathError(f"{text[i:text.index(']', i) + 1]} at character {at} is none of [0], [field=value], [\"quoted.key\"]")
            i = m.end()
            if i < n and text[i] not in ".[":
                raise KeyPathError(f"expected '.' or '[' after ']' at character {i + 1}")
        elif text[i] == ".":
            if i == 0:
                raise KeyPathError("it starts with '.'")
            if i + 1 == n:
                raise KeyPathError("it ends with '.'")
            if text[i + 1] == ".":
                raise KeyPathError(f"an empty name between two dots at character {at}")
            if text[i + 1] == "[":
                raise KeyPathError(f"'.[' at character {at}: write key[0], without the dot")
            i += 1
            m = _NAME.match(text, i)
            if m is None:
                raise KeyPathError(f"unexpected {text[i]!r} at character {i + 1}")
            steps.append(Step("key", name=m.group(0)))
            i = m.end()
        else:
            m = _NAME.match(text, i)
            if m is None or steps:
                raise KeyPathError(f"unexpected {text[i]!r} at character {at}")
            steps.append(Step("key", name=m.group(0)))
            i = m.end()
        if len(steps) > MAX_STEPS:
            raise KeyPathError(f"more than {MAX_STEPS} steps")
    return tuple(steps)


def key_path_problem(text: str, mapping_at_end: bool = False) -> Optional[str]:
    """What is wrong with ``text`` as a key path, for mlops.yaml's validation; None when fine."""
    try:
        steps = parse_key(text)
    except KeyPathError as exc:
        return exc.detail
    if mapping_at_end and steps[-1].kind != "key":
        return "it must end with a key name (the mapping the annotations go in), not a list item"
    return None


_SAMPLE = {"uri": "s3://bucket/models/x.onnx", "sha256": "0" * 64, "version": 1, "name": "model", "format": "onnx"}


def value_format_problem(fmt: str) -> Optional[str]:
    """What is wrong with a ``value:`` format string; None when fine."""
    if not fmt:
        return "it is empty"
    try:
        parts = list(string.Formatter().parse(fmt))
    except ValueError as exc:
        return str(exc)[0].lower() + str(exc)[1:]
    used = []
    for _literal, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in FIELDS:
            return f"unknown field {{{field}}}" if field else "an empty {} names no field"
        if conversion:
            return f"{{{field}!{conversion}}}: conversions are not supported"
        if spec and "{" in spec:
            return f"{{{field}:{spec}}}: nested fields are not supported"
        used.append(field)
    if not used:
        return "it names no pin field, so every promotion would write the same text"
    try:
        fmt.format(**_SAMPLE)
    except (ValueError, TypeError) as exc:
        return f"cannot format a pin: {exc}"
    return None


def format_value(fmt: str, pin: "Pin") -> str:
    fields = {"uri": pin.uri, "sha256": pin.sha256, "version": pin.version if pin.version is not None else "", "name": pin.name or "", "format": pin.format}
    return fmt.format(**fields)


# ---------------------------------------------------------------- loading


class _Loader(_BoundedComposer, Reader, Scanner, Parser, SafeConstructor, Resolver):  # type: ignore[misc]
    """mlops.yaml's bounded composer (depth, aliases) over PyYAML's pure-Python parser.

    ``yamlpos.check_bounds`` composes a single document, and k8s files hold several, so
    the composer class is reused here. The pure-Python reader on purpose: its marks are
    indexes into the str, which a splice needs; libyaml's skip a leading BOM.
    """

    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        _BoundedComposer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


def _compose_all(text: str, where: str) -> list[yaml.Node]:
    """Every document's root node, within yamlpos's bounds."""
    try:
        check_size(len(text.encode("utf-8", "surrogatepass")))
    except YamlLimitError as exc:
        raise PinFileError(f"{where}:1:1: {exc.problem}", hint="a deploy file is a few KiB") from None
    loader = _Loader(text)
    docs: list[yaml.Node] = []
    try:
        while loader.check_node():
            if len(docs) >= MAX_DOCUMENTS:
                raise PinFileError(f"{where}: more than {MAX_DOCUMENTS} documents", hint="split the file")
            docs.append(loader.get_node())
    except YamlLimitError as exc:
        raise PinFileError(f"{where}:{exc.line}:{exc.column}: {exc.problem}", hint=exc.hint) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = exc.problem or str(exc)
        if exc.context:
            problem = f"{problem} ({exc.context})"
        raise PinFileError(f"{where}{pos}: not valid YAML: {problem}", hint="fix the file on the target branch; the promotion PR edits valid YAML only") from None
    except yaml.YAMLError as exc:  # the reader's non-printable characters
        raise PinFileError(f"{where}: not valid YAML: {exc}", hint="fix the file on the target branch") from None
    finally:
        loader.dispose()
    return docs


def _construct_all(text: str, where: str) -> list[Any]:
    """Plain data of every document (a fresh parse: constructing flattens `<<:` in place)."""
    loader = _Loader(text)
    out = []
    try:
        while loader.check_data():
            out.append(loader.get_data())
            if len(out) > MAX_DOCUMENTS:
                break
    except yaml.YAMLError as exc:
        raise PinFileError(f"{where}: cannot read a value: {exc}") from None
    finally:
        loader.dispose()
    return out


# ---------------------------------------------------------------- finding a value


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        keys = [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
        return "a mapping" + (f" (keys: {_listing(keys)})" if keys else "")
    if isinstance(node, yaml.SequenceNode):
        return f"a list of {len(node.value)} item{'s' if len(node.value) != 1 else ''}"
    return f"the value {node.value!r}"


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f", ... ({len(items)} in all)" if len(items) > SHOWN else "")


def _key_value(node: yaml.Node) -> Any:
    """A mapping key as YAML reads it (`1` is an int, `"1"` a string)."""
    if not isinstance(node, yaml.ScalarNode) or node.tag == _STR:
        return node.value
    return SafeConstructor().construct_object(node, deep=True)


@dataclass
class _Found:
    node: yaml.Node
    concrete: tuple[Any, ...]  # the path into the constructed document
    key_node: Optional[yaml.Node]  # the key (or the item) that introduced it, for positions
    parent: Optional[yaml.Node]


class _Miss(Exception):
    """A step that does not resolve; ``at`` is the deepest node that exists."""

    def __init__(self, at: yaml.Node, problem: str) -> None:
        super().__init__(problem)
        self.at = at
        self.problem = problem


def _resolve(root: yaml.Node, steps: tuple[Step, ...], label: str) -> _Found:
    """Walk ``steps`` from ``root``. Raises :class:`_Miss` naming the deepest part that exists."""
    found = _Found(root, (), None, None)
    for depth, step in enumerate(steps):
        node = found.node
        trail = show_steps(steps[:depth]) or label
        at = found.key_node or node
        if step.kind == "key":
            if not isinstance(node, yaml.MappingNode):
                what = "a list; select an item with [0] or [name=...]" if isinstance(node, yaml.SequenceNode) else f"{_kind(node)}, not a mapping"
                raise _Miss(at, f"{trail} is {what}")
            pairs = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == step.name]
            if not pairs:
                keys = [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
                merged = " (keys merged in with `<<:` are not followed)" if any(k.tag == "tag:yaml.org,2002:merge" for k, _ in node.value) else ""
                raise _Miss(at, f"{trail} has no key {step.name!r}" + (f" (its keys: {_listing(keys)})" if keys else "") + merged)
            if len(pairs) > 1:
                raise _Miss(pairs[1][0], f"{trail} has the key {step.name!r} twice (lines {', '.join(str(_pos(k)[0]) for k, _ in pairs)})")
            key_node, child = pairs[0]
            if child.start_mark.index < key_node.end_mark.index:
                raise _Miss(key_node, f"{show_steps(steps[:depth + 1])} is an alias (*name) of a block defined on line {_pos(child)[0]}; a pin edits one place: point the key path there")
            found = _Found(child, found.concrete + (_key_value(key_node),), key_node, node)
            continue
        if not isinstance(node, yaml.SequenceNode):
            raise _Miss(at, f"{trail} is {_kind(node)}, not a list; use .key for a mapping")
        items = node.value
        if step.kind == "index":
            if step.index >= len(items):
                raise _Miss(at, f"{trail} has {len(items)} item{'s' if len(items) != 1 else ''}; [{step.index}] is past the end")
            chosen = step.index
        else:
            matches, values = [], []
            for i, item in enumerate(items):
                if not isinstance(item, yaml.MappingNode):
                    continue
                for k, v in item.value:
                    if isinstance(k, yaml.ScalarNode) and k.value == step.name and isinstance(v, yaml.ScalarNode):
                        values.append(v.value)
                        if v.value == step.value:
                            matches.append(i)
            if not matches:
                have = f" (their {step.name}: {_listing(values)})" if values else f" (no item has a {step.name!r} key)"
                raise _Miss(at, f"no item of {trail} has {step.name}: {step.value}" + have)
            if len(matches) > 1:
                lines = ", ".join(str(_pos(items[i])[0]) for i in matches)
                raise _Miss(at, f"{len(matches)} items of {trail} have {step.name}: {step.value} (lines {lines}); a selector must match exactly one")
            chosen = matches[0]
        item = items[chosen]
        floor = items[chosen - 1].end_mark.index if chosen else node.start_mark.index
        if item.start_mark.index < floor:
            raise _Miss(at, f"{show_steps(steps[:depth + 1])} is an alias (*name) of a block defined on line {_pos(item)[0]}; a pin edits one place: point the key path there")
        found = _Found(item, found.concrete + (chosen,), item, node)
    return found


def _describe_documents(docs: list[yaml.Node]) -> str:
    out = []
    for i, doc in enumerate(docs):
        kind = name = None
        if isinstance(doc, yaml.MappingNode):
            for k, v in doc.value:
                if isinstance(k, yaml.ScalarNode) and k.value == "kind" and isinstance(v, yaml.ScalarNode):
                    kind = v.value
                if isinstance(k, yaml.ScalarNode) and k.value == "metadata" and isinstance(v, yaml.MappingNode):
                    name = next((vv.value for kk, vv in v.value if isinstance(kk, yaml.ScalarNode) and kk.value == "name" and isinstance(vv, yaml.ScalarNode)), None)
        out.append(f"{i}: (empty)" if _is_null(doc) else f"{i}: {kind or '(no kind)'}" + (f" {name}" if name else ""))
        if len(out) >= SHOWN:
            out.append("...")
            break
    return "; ".join(out)


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL


def _select_document(docs: list[yaml.Node], document: Any, where: str, key: str, hint: str) -> int:
    present = [i for i, d in enumerate(docs) if not _is_null(d)]
    listing = f"the documents here: {_describe_documents(docs)}"
    if document is None:
        if len(present) == 1:
            return present[0]
        if not present:
            raise PinFileError(f"{where}:1:1: {key}: the file holds no YAML document", hint=hint)
        raise PinFileError(f"{where}:1:1: {key}: the file holds {len(present)} documents; say which one with `document:`", hint=f"document: 0 (an index, from 0) or document: {{kind: Deployment}}; {listing}")
    if isinstance(document, int):
        if document >= len(docs) or _is_null(docs[document]):
            what = f"has {len(docs)} document{'s' if len(docs) != 1 else ''}" if document >= len(docs) else f"has an empty document {document}"
            raise PinFileError(f"{where}:1:1: {key}: document: {document}, but the file {what}", hint=listing)
        return document
    wanted = ", ".join(f"{k}: {v}" for k, v in document.items())
    matches = []
    for i in present:
        ok = True
        for sel_key, sel_value in document.items():
            try:
                got = _resolve(docs[i], parse_key(sel_key), "the document").node
            except (_Miss, KeyPathError):
                ok = False
                break
            if not isinstance(got, yaml.ScalarNode) or got.value != str(sel_value):
                ok = False
                break
        if ok:
            matches.append(i)
    if len(matches) != 1:
        how = "no document has" if not matches else f"{len(matches)} documents ({', '.join(map(str, matches))}) have"
        raise PinFileError(f"{where}:1:1: {key}: {how} {wanted}; `document:` must pick exactly one", hint=listing)
    return matches[0]


# ---------------------------------------------------------------- rendering

# YAML 1.2 (Go's yaml, so kubectl, Argo CD, Flux) reads these plain scalars as
# numbers, booleans or null; YAML 1.1 adds yes/no/on/off. A string value that looks
# like one is quoted, so an annotation or env value stays a string for every reader.
_TYPED = re.compile(
    r"[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?|0o[0-7]+|0x[0-9a-fA-F]+|0b[01]+|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
    r"|[0-9]+(:[0-5]?[0-9])+(\.[0-9]*)?|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?"
    r"|y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|null|Null|NULL|~"
)


def _plain_ok(value: str, flow: bool) -> bool:
    if not value or _TYPED.fullmatch(value) or any(c in value for c in "\n\r\t"):
        return False
    if flow and any(c in value for c in ",[]{}"):
        return False
    dumped = yaml.safe_dump(value, width=10**9, allow_unicode=True)
    return dumped in (f"{value}\n", f"{value}\n...\n")


def _quoted(value: str, style: str) -> str:
    if (style == "'" and any(c in value for c in "\n\r")) or not value.isprintable():
        style = '"'
    out = yaml.safe_dump(value, default_style=style, width=10**9, allow_unicode=True).rstrip("\n")
    if "\n" in out or yaml.safe_load(out) != value:  # pragma: no cover - PyYAML's own escaping
        out = yaml.safe_dump(value, default_style='"', width=10**9, allow_unicode=False).rstrip("\n")
    return out


def _render(value: Any, style: Optional[str], flow: bool) -> str:
    """``value`` as a YAML scalar in the old value's style: plain stays plain when YAML reads
    it back as the same string, quotes stay the same quotes; a block scalar (| or >) becomes
    a double-quoted one (a pin is one line)."""
    if isinstance(value, int):
        return str(value)
    if style in ('"', "'"):
        return _quoted(value, style)
    if style is None and _plain_ok(value, flow):
        return value
    return _quoted(value, '"')


def _in_flow(parent: Optional[yaml.Node]) -> bool:
    return bool(parent is not None and getattr(parent, "flow_style", False))


# ---------------------------------------------------------------- editing


@dataclass
class _Edit:
    start: int
    end: int
    text: str


def _line_end(text: str, pos: int) -> int:
    """Where a new line goes after the line holding ``pos``."""
    if pos > 0 and text[pos - 1] == "\n":
        return pos  # a block scalar's end is the start of the next line already
    nl = text.find("\n", pos)
    return len(text) if nl == -1 else nl + 1


def _last_end(node: yaml.Node) -> int:
    """End of the last character a block collection's entries occupy."""
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False) or not node.value:
        return node.end_mark.index
    if isinstance(node, yaml.MappingNode):
        key, value = node.value[-1]
        return key.end_mark.index if value.start_mark.index < key.end_mark.index else max(key.end_mark.index, _last_end(value))
    return _last_end(node.value[-1])


def _check_splicable(node: yaml.Node, text: str, where: str, key: str, hint: str) -> None:
    first = text[node.start_mark.index : node.start_mark.index + 1]
    if first in ("&", "!"):
        what = "carries an anchor (&name) other places refer to" if first == "&" else "carries a tag (!...)"
        line, col = _pos(node)
        raise PinFileError(f"{where}:{line}:{col}: {key}: the value {what}; a pin replaces one plain value", hint=hint)


def _scalar_edit(found: _Found, new: Any, text: str, where: str, key: str, hint: str) -> tuple[_Edit, Any]:
    node = found.node
    line, col = _pos(found.key_node or node)
    if not isinstance(node, yaml.ScalarNode):
        raise PinFileError(f"{where}:{line}:{col}: {key}: expected a single value to replace, found {_kind(node)}", hint=hint)
    _check_splicable(node, text, where, key, hint)
    value: Any = new
    if node.tag == _INT and node.style is None and isinstance(new, str) and re.fullmatch(r"[0-9]+", new):
        value = int(new)  # `replicas: 3`-like integers stay integers (Helm values)
    start, end = node.start_mark.index, node.end_mark.index
    if node.style in ("|", ">"):  # a block scalar's span runs through its line breaks; they stay
        end = start + len(text[start:end].rstrip())
    rendered = _render(value, node.style, _in_flow(found.parent))
    if start == end and start > 0 and text[start - 1] not in " \t\n":
        rendered = " " + rendered  # `storageUri:` with no value yet
    return _Edit(start, end, rendered), value


def _annotation_edits(root: yaml.Node, steps: tuple[Step, ...], values: dict[str, str], text: str, where: str, shown: str, nl: str, hint: str) -> tuple[list[_Edit], tuple[Any, ...]]:
    """Edits that set ``values`` in the mapping at ``steps`` (created when only its last
    key is missing). Returns the edits and the mapping's path in the constructed document."""
    try:
        parent = _resolve(root, steps[:-1], "the document")
    except _Miss as miss:
        line, col = _pos(miss.at)
        raise PinFileError(f"{where}:{line}:{col}: annotate: {shown}: {miss.problem}", hint=hint) from None
    last = steps[-1].name
    pnode = parent.node
    line, col = _pos(parent.key_node or pnode)
    if not isinstance(pnode, yaml.MappingNode):
        raise PinFileError(f"{where}:{line}:{col}: annotate: {show_steps(steps[:-1]) or 'the document'} is {_kind(pnode)}, not a mapping", hint=hint)
    _check_splicable(pnode, text, where, f"annotate: {shown}", hint)
    pairs = [(k, v) for k, v in pnode.value if isinstance(k, yaml.ScalarNode) and k.value == last]
    entries = lambda: ", ".join(f"{_render(k, None, True)}: {_render(v, DQ, True)}" for k, v in values.items())  # noqa: E731
    if not pairs:  # create the mapping under its parent
        where_path = parent.concrete + (last,)
        if pnode.flow_style:
            at, sep = _flow_insert(pnode, text)
            return [_Edit(at, at, f"{sep}{_render(last, None, True)}: {{{entries()}}}")], where_path
        child_col = pnode.value[0][0].start_mark.column if pnode.value else 0
        step = child_col - parent.key_node.start_mark.column if parent.key_node is not None and child_col > parent.key_node.start_mark.column else 2
        at = _line_end(text, _last_end(pnode))
        lines = f"{' ' * child_col}{_render(last, None, False)}:{nl}" + "".join(f"{' ' * (child_col + step)}{_render(k, None, False)}: {_render(v, DQ, False)}{nl}" for k, v in values.items())
        return [_Edit(at, at, ("" if at == 0 or text[at - 1] == "\n" else nl) + lines)], where_path
    key_node, mapping = pairs[0]
    where_path = parent.concrete + (_key_value(key_node),)
    if len(pairs) > 1 or mapping.start_mark.index < key_node.end_mark.index:
        kl = _pos(key_node)
        raise PinFileError(f"{where}:{kl[0]}:{kl[1]}: annotate: {shown} is defined twice or through an alias; a pin edits one place", hint=hint)
    if _is_null(mapping):
        if mapping.start_mark.index == mapping.end_mark.index:  # `annotations:` with nothing after it
            key_col = key_node.start_mark.column
            at = _line_end(text, mapping.end_mark.index)
            lines = "".join(f"{' ' * (key_col + 2)}{_render(k, None, False)}: {_render(v, DQ, False)}{nl}" for k, v in values.items())
            return [_Edit(at, at, ("" if text[at - 1 : at] in ("\n", "") and at else nl) + lines)], where_path
        return [_Edit(mapping.start_mark.index, mapping.end_mark.index, f"{{{entries()}}}")], where_path
    if not isinstance(mapping, yaml.MappingNode):
        kl = _pos(key_node)
        raise PinFileError(f"{where}:{kl[0]}:{kl[1]}: annotate: {shown}: expected a mapping for the annotations, found {_kind(mapping)}", hint=hint)
    _check_splicable(mapping, text, where, f"annotate: {shown}", hint)
    edits, missing = [], {}
    for k, v in values.items():
        hits = [(kn, vn) for kn, vn in mapping.value if isinstance(kn, yaml.ScalarNode) and kn.value == k]
        if not hits:
            missing[k] = v
            continue
        found = _Found(hits[0][1], (), hits[0][0], mapping)
        edits.append(_scalar_edit(found, v, text, where, f"annotate: {shown}.{k}", hint)[0])
    if missing:
        if mapping.flow_style:
            at, sep = _flow_insert(mapping, text)
            body = ", ".join(f"{_render(k, None, True)}: {_render(v, DQ, True)}" for k, v in missing.items())
            edits.append(_Edit(at, at, sep + body))
        else:
            col_ = mapping.value[0][0].start_mark.column
            at = _line_end(text, _last_end(mapping))
            lines = "".join(f"{' ' * col_}{_render(k, None, False)}: {_render(v, DQ, False)}{nl}" for k, v in missing.items())
            edits.append(_Edit(at, at, ("" if text[at - 1 : at] == "\n" else nl) + lines))
    return edits, where_path


def _flow_insert(node: yaml.Node, text: str) -> tuple[int, str]:
    """Where an entry goes in a flow mapping (before its `}`), and the separator it needs."""
    j = node.end_mark.index - 1  # the `}`
    while j > node.start_mark.index + 1 and text[j - 1] in " \t\r\n":
        j -= 1
    before = text[j - 1]
    return j, ("" if before == "{" else " " if before == "," else ", ")


def _apply_edits(text: str, edits: list[_Edit]) -> str:
    for e in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        text = text[: e.start] + e.text + text[e.end :]
    return text


# ---------------------------------------------------------------- the checks after editing


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return _ABSENT
    return data


_ABSENT = object()


def _differences(a: Any, b: Any, path: tuple[Any, ...], out: list[tuple[Any, ...]]) -> None:
    """Paths where ``a`` and ``b`` differ (depth bounded by the loader's MAX_DEPTH)."""
    if len(out) > SHOWN:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for k in [*a, *(k for k in b if k not in a)]:
            if k not in a or k not in b:
                out.append(path + (k,))
            else:
                _differences(a[k], b[k], path + (k,), out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _differences(x, y, path + (i,), out)
    elif type(a) is not type(b) or (a != b and not (a != a and b != b)):  # NaN equals NaN here
        out.append(path)


def _verify(old_text: str, new_text: str, expected: list[tuple[int, tuple[Any, ...], Any, bool]], where: str) -> None:
    """The edited text reads as the original with only the pinned values changed."""
    old = _construct_all(old_text, where)
    try:
        new = _construct_all(new_text, where)
    except PinFileError as exc:
        raise MlopsError(f"{where}: the edited file would not be valid YAML ({exc.message}); nothing was written", hint="a bug in mlgitops: please report it with the file") from None
    wrong: list[str] = []
    if len(old) != len(new):
        wrong.append(f"{len(old)} documents became {len(new)}")
    else:
        for d, path, value, _ in expected:
            got = _get(new[d], path)
            if got != value or type(got) is not type(value):
                wrong.append(f"document {d} {_dotted(path)} reads {got!r}, not {value!r}")
        for d in range(len(old)):
            diffs: list[tuple[Any, ...]] = []
            _differences(old[d], new[d], (), diffs)
            for p in diffs:
                ok = any(
                    ed == d and (p[: len(e)] == e or (annotation and e[: len(p)] == p and _get(old[d], p) in (None, _ABSENT)))
                    for ed, e, _, annotation in expected
                )
                if not ok:
                    wrong.append(f"document {d} {_dotted(p)} changed")
    if wrong:
        raise MlopsError(f"{where}: the edited file would not read as the original with only the pin changed ({'; '.join(wrong[:SHOWN])}); nothing was written", hint="a bug in mlgitops: please report it with the file")


def _dotted(path: tuple[Any, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(path)) or "(the document)"


# ---------------------------------------------------------------- the API


def repo_path(spec_path: str, base: str = "") -> str:
    """The path read and written: ``spec_path`` under ``base`` (the folder of mlops.yaml
    inside its repository, when the files live in that repository), normalised."""
    return posixpath.normpath(posixpath.join(base, spec_path) if base else spec_path)


def _label(env_name: str, index: int) -> str:
    return f"deploy.environments.{env_name}.files[{index}]"


def _read(read_file: Callable[[str], Any], path: str, label: str) -> str:
    text = read_file(path)
    if text is None:
        raise PinFileError(f"{path}: file not found", hint=f"{label}.path names a file that is not on the target branch: commit it there, or fix the path in mlops.yaml")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PinFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})", hint=f"{label} must name a YAML file") from None
    return text


def _apply_one(env_name: str, index: int, spec: "PinFile", pin: "Pin", text: str, path: str) -> tuple[str, list[tuple[int, tuple[Any, ...], Any, bool]]]:
    label = _label(env_name, index)
    hint = f"compare {label} in mlops.yaml with the file (key paths: a.b.c; list items [0] or [name=value])"
    problem = value_format_problem(spec.value)
    if problem:
        raise PinFileError(f"{path}: {label}.value: {problem}", hint="the value may use {uri} {sha256} {version} {name} {format}, e.g. value: \"{uri}\"")
    try:
        steps = parse_key(spec.key)
        annotate = parse_key(spec.annotate) if spec.annotate else None
    except KeyPathError as exc:
        raise PinFileError(f"{path}: {label}: not a key path ({exc.detail})", hint=hint) from None
    docs = _compose_all(text, path)
    d = _select_document(docs, spec.document, path, spec.key, hint)
    try:
        found = _resolve(docs[d], steps, "the document")
    except _Miss as miss:
        line, col = _pos(miss.at)
        raise PinFileError(f"{path}:{line}:{col}: {spec.key}: {miss.problem}", hint=hint) from None
    edit, value = _scalar_edit(found, format_value(spec.value, pin), text, path, spec.key, hint)
    edits = [edit]
    expected: list[tuple[int, tuple[Any, ...], Any, bool]] = [(d, found.concrete, value, False)]
    if annotate is not None:
        values = {SHA_ANNOTATION: pin.sha256, VERSION_ANNOTATION: str(pin.version) if pin.version is not None else ""}
        nl = "\r\n" if "\r\n" in text else "\n"
        more, mapping = _annotation_edits(docs[d], annotate, values, text, path, spec.annotate or "", nl, hint)
        edits += more
        expected += [(d, mapping + (k,), v, True) for k, v in values.items()]
    starts = sorted((e.start, e.end) for e in edits)
    if any(a[1] > b[0] for a, b in zip(starts, starts[1:])):
        raise PinFileError(f"{path}: {label}: the key and the annotations overlap", hint="point annotate at a mapping that does not hold the key")
    return _apply_edits(text, edits), expected


def apply(env_name: str, files_spec: Iterable["PinFile"], pin: "Pin", read_file: Callable[[str], Any], base: str = "") -> dict[str, str]:
    """``{path: new_text}`` for every file of ``files_spec`` whose text the pin changes.

    ``read_file(path)`` returns a file's text (None when missing) from the branch the
    promotion PR targets; paths are ``spec.path`` under ``base`` (see :func:`repo_path`).
    Entries naming the same file are applied in order to one text. Raises
    :class:`PinFileError` (exit 2) before anything is returned when any entry cannot
    be applied, so a PR never carries half the edits.
    """
    groups: dict[str, list[tuple[int, "PinFile"]]] = {}
    for index, spec in enumerate(files_spec):
        groups.setdefault(repo_path(spec.path, base), []).append((index, spec))
    out: dict[str, str] = {}
    for path, specs in groups.items():
        text = _read(read_file, path, _label(env_name, specs[0][0]))
        new_text, expected = text, []
        for index, spec in specs:
            new_text, more = _apply_one(env_name, index, spec, pin, new_text, path)
            expected += more
        if new_text != text:
            _verify(text, new_text, expected, path)
            out[path] = new_text
    return out


def read_values(files_spec: Iterable["PinFile"], read_file: Callable[[str], Any], base: str = "") -> list[tuple[str, str, Optional[str]]]:
    """``(path, key, value)`` per entry, the value as written in the file now; None when
    the file, the document or the key is missing (for status displays: never raises
    on a bad file)."""
    rows: list[tuple[str, str, Optional[str]]] = []
    for spec in files_spec:
        path = repo_path(spec.path, base)
        value: Optional[str] = None
        try:
            text = _read(read_file, path, "")
            docs = _compose_all(text, path)
            d = _select_document(docs, spec.document, path, spec.key, "")
            node = _resolve(docs[d], parse_key(spec.key), "the document").node
            if isinstance(node, yaml.ScalarNode):
                value = node.value
        except (PinFileError, _Miss, KeyPathError):
            pass
        rows.append((path, spec.key, value))
    return rows
