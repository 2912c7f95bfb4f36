"""Deployment manifests: the per-environment YAML that pins the deployed model.

A promotion rewrites only the pin (``model:`` block's values and ``previous:``), with
ruamel.yaml's round-trip mode, so the user's comments and key order survive and the
pull request's diff shows only what changes (STYLE.md #9, like pre-commit's
``autoupdate``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from mlgitops.errors import InputError

PIN_KEYS = ("name", "version", "uri", "sha256", "format", "metrics", "lineage")


class ManifestError(InputError):
    """A manifest that cannot be read as a pin; the message names the file and key."""


@dataclass
class Pin:
    name: str | None
    version: int | None
    uri: str
    sha256: str
    format: str = "onnx"
    metrics: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    previous: dict[str, Any] | None = None  # {version, uri, sha256} pinned before this one
    #: set by a rollback: {version, sha256} of the model rolled back, which a later push
    #: producing those same bytes does not promote again (a new model or a promote does)
    held: dict[str, Any] | None = None

    def short(self) -> str:
        return f"v{self.version} ({self.sha256[:12]})" if self.version is not None else self.sha256[:12]


def _yaml() -> Any:
    from ruamel.yaml import YAML

    y = YAML()  # round-trip: comments, key order and quoting are kept
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def read_pin(text: str | bytes | None, where: str) -> Pin | None:
    """The pin in a manifest; None when nothing is pinned yet. Nonsense raises ManifestError."""
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode(errors="replace")  # bytes.decode is UTF-8 whatever the locale
    from ruamel.yaml.error import YAMLError

    _bounded(text, where)
    try:
        doc = _yaml().load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        pos = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ManifestError(f"{where}{pos}: not valid YAML: {getattr(exc, 'problem', None) or exc}", hint="fix the file by hand, or restore it with `git checkout` and promote again") from None
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise ManifestError(f"{where}:1:1: expected a mapping with a `model:` key, got {type(doc).__name__}")
    model = doc.get("model")
    if model is None:
        return None
    if not isinstance(model, dict):
        raise ManifestError(f"{where}:{_line(doc, 'model')}: model: expected a mapping (name, version, uri, sha256, ...), got {type(model).__name__}")
    if not model.get("uri") and not model.get("sha256"):
        return None
    problems = []
    for key in ("uri", "sha256"):
        if not isinstance(model.get(key), str) or not model.get(key):
            problems.append(f"{where}:{_line(model, key)}: model.{key}: expected a string, got {model.get(key)!r}")
    sha = model.get("sha256")
    if isinstance(sha, str) and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
        problems.append(f"{where}:{_line(model, 'sha256')}: model.sha256: expected 64 lowercase hex digits, got {sha!r}")
    version = model.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        problems.append(f"{where}:{_line(model, 'version')}: model.version: expected a whole number >= 1, got {version!r}")
    if problems:
        raise ManifestError("\n".join(problems), hint="manifests are written by promotion PRs; restore the last good one with `git checkout`, or `mlops rollback ENV --to VERSION`")
    previous = doc.get("previous")
    held = doc.get("held")
    return Pin(
        name=str(model["name"]) if model.get("name") is not None else None,
        version=version,
        uri=str(model["uri"]),
        sha256=str(sha),
        format=str(model.get("format") or ("joblib" if str(model["uri"]).endswith((".joblib", ".pkl")) else "onnx")),
        metrics=_plain(model.get("metrics") or {}),
        lineage=_plain(model.get("lineage") or {}),
        previous=_plain(previous) if isinstance(previous, dict) and previous.get("sha256") else None,
        held=_plain(held) if isinstance(held, dict) and isinstance(held.get("sha256"), str) else None,
    )


def _bounded(text: str, where: str) -> None:
    """A PR can change a manifest: alias bombs, deep nesting and oversize files are
    refused with mlops.yaml's bounds (mlgitops.config.positions) before ruamel builds anything."""
    from mlgitops.config.positions import YamlLimitError, YamlSyntaxError, check_bounds

    try:
        check_bounds(text)
    except YamlLimitError as exc:
        raise ManifestError(f"{where}:{exc.line}:{exc.column}: {exc.problem}", hint=exc.hint) from None
    except YamlSyntaxError:
        pass  # ruamel reports it, in the words manifests have always had


def _line(node: Any, key: str) -> str:
    try:
        line, col = node.lc.value(key)
        return f"{line + 1}:{col + 1}"
    except (AttributeError, KeyError, TypeError):
        return "1:1"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def new_manifest(env: str) -> str:
    return (files("mlgitops.templates") / "manifest.yaml.j2").read_text(encoding="utf-8").replace("{{ env }}", env)


def write_pin(text: str | None, env: str, pin: Pin, previous: Pin | None, held: Pin | None = None) -> str:
    """``text`` with the pin replaced (or a new manifest); every other line is kept.
    ``held``: the model a rollback rolls back, recorded so that a later push producing
    it again does not reopen its promotion (any other write clears the hold)."""
    from ruamel.yaml.comments import CommentedMap

    y = _yaml()
    if text and text.strip():
        _bounded(text, f"the {env} manifest")
    doc = y.load(text if text and text.strip() else new_manifest(env))
    if doc is None or not isinstance(doc, dict):
        doc = y.load(new_manifest(env))
    model = doc.get("model")
    if not isinstance(model, dict):
        model = CommentedMap()
        doc["model"] = model
    values = {
        "name": pin.name,
        "version": pin.version,
        "uri": pin.uri,
        "sha256": pin.sha256,
        "format": pin.format,
        "metrics": _flow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in pin.metrics.items()}),
        "lineage": _flow(pin.lineage),
    }
    for key in PIN_KEYS:
        model[key] = values[key]
    if previous is not None:
        doc["previous"] = _flow({"version": previous.version, "uri": previous.uri, "sha256": previous.sha256})
    elif "previous" in doc:
        del doc["previous"]
    if held is not None:
        doc["held"] = _flow({"version": held.version, "sha256": held.sha256, "reason": f"rolled back from {held.short()}"})
    elif "held" in doc:
        del doc["held"]
    out = io.StringIO()
    y.dump(doc, out)
    return out.getvalue()


def _flow(mapping: dict[str, Any]) -> Any:
    """One line per mapping, so a pin change is a few changed lines in review."""
    from ruamel.yaml.comments import CommentedMap

    node = CommentedMap((k, v) for k, v in mapping.items() if v is not None)
    node.fa.set_flow_style()
    return node


def resolve_uri(uri: str, base: Path) -> Path:
    """``file:///abs/path`` or a path relative to ``base`` (the folder of mlops.yaml)."""
    if uri.startswith("file://"):
        return Path(uri.removeprefix("file://"))
    if "://" in uri:
        raise ManifestError(f"artifact URI {uri!r}: only file paths and file:// URIs are supported", hint="point registry.path at a folder every deploy target can read (e.g. a shared volume)")
    path = Path(uri)
    return path if path.is_absolute() else base / path
