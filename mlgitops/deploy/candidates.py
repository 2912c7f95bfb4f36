"""The pull request publishes its candidate; the merge, on another machine, reuses it.

A pull request run stores what it trained and reviewed (the pickle as bytes, the ONNX
export with its parity record, the model's metadata, the report) in the registry's
candidates area, under its model key: the fingerprint of data, code, params and
libraries. The deploy for the merge computes the model key of the merged commit; when
the registry holds a candidate for it, those bytes are fetched (sha256 verified),
placed in this run's cache, scored through ONNX Runtime (the pickle, written by pull
request code, is never unpickled by the trusted deploy) and registered. Nothing here
depends on the Actions cache: a fresh runner with an empty `.mlops/` gets the same
bytes.

Where the registry holds no candidate for the key (a fork's pull request without
registry credentials, a pruned candidate, a merge whose inputs differ from the PR
head), the deploy trains, and :func:`not_reviewed` says so in the promotion PR's
first line, with the sha256 the pull request reviewed when one is known.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from mlgitops.deploy.registry import Candidate, Registry, RegistryError
from mlgitops.deploy.registry.backends import BackendError


@dataclass
class Hydrated:
    candidate: Candidate
    onnx_sha256: str | None

    @property
    def pr(self) -> Any:
        return self.candidate.info.get("pr")

    def origin(self) -> dict[str, Any]:
        """Lineage entries of a version registered from this candidate."""
        info = self.candidate.info
        return {"reviewed_in": {k: info.get(k) for k in ("pr", "head_sha", "head_ref", "repo") if info.get(k) is not None}}

    def line(self) -> str:
        info = self.candidate.info
        where = f"PR #{info['pr']}" if info.get("pr") is not None else f"`{info.get('head_ref') or 'a branch'}`"
        head = f" (head {str(info['head_sha'])[:12]})" if info.get("head_sha") else ""
        return f"registered the bytes reviewed in {where}{head}: ONNX sha256 {(self.onnx_sha256 or '')[:12]}, fetched from the registry"


def publish(registry: Registry, name: str, key: str, store: Any, report: Any, event: Any) -> str:
    """Store this run's candidate under its model key. Returns "" when published, else a
    line for the report's notes: a registry this run may not write (a fork's PR, a
    read-only token) is a note, never a failed gate."""
    files: dict[str, tuple[bytes, str]] = {}
    exported = store.get_onnx(key)
    if exported is not None:
        files["onnx"] = (exported[0], "onnx")
    pickle = store.intact_pickle(key)
    if pickle is not None:
        files["sklearn"] = (pickle[0].read_bytes(), "joblib")
    if not files:
        return ""
    files["report"] = (json.dumps(report.to_dict(), sort_keys=True, default=str).encode(), "json")
    info = {
        "pr": event.pr_number if event.pr_number is not None else event.queue_pr,  # a merge-queue run names its PR in the queue branch
        "repo": event.repo,
        "head_sha": event.head_sha,
        "head_ref": event.head_ref,
        "base_ref": event.base_ref,
        "verdict": report.verdict,
        "export": exported[1] if exported is not None else None,
        "meta": pickle[1] if pickle is not None else None,
        "tool_version": report.tool_version,
    }
    try:
        registry.publish_candidate(name, key, files, info)
    except (BackendError, RegistryError, OSError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        return f"candidate not published to the registry {registry.url}: {message.splitlines()[0]}; a merge will retrain, and its promotion PR will say the bytes were not reviewed"
    return ""  # published: the comment already names the ONNX sha256 a merge will register


def hydrate(registry: Registry, name: str, key: str, store: Any) -> Hydrated | str | None:
    """Place the registry's candidate for ``key`` in this run's staged cache.
    None: no candidate; a string: there is one but it cannot be used (why)."""
    try:
        found = registry.candidate(name, key)
    except (BackendError, RegistryError) as exc:
        return f"the registry's candidate for model key {key[:12]} could not be read: {exc.message.splitlines()[0]}"
    if found is None:
        return None
    try:
        blobs = {role: registry.read_object(a.sha256, f"candidate {key[:12]} {role}") for role, a in found.artifacts.items() if role in ("onnx", "sklearn")}
    except (BackendError, RegistryError) as exc:
        return exc.message.splitlines()[0]
    meta, export = found.info.get("meta"), found.info.get("export")
    if "onnx" not in blobs or "sklearn" not in blobs or not isinstance(meta, dict) or not isinstance(export, dict):
        return f"the registry's candidate for model key {key[:12]} has no ONNX export to reuse"
    if hashlib.sha256(blobs["sklearn"]).hexdigest() != meta.get("model_sha256") or hashlib.sha256(blobs["onnx"]).hexdigest() != export.get("sha256"):
        return f"the registry's candidate for model key {key[:12]} does not match its own record (sha256)"
    models = store.staging / "cache" / "models" / key
    models.mkdir(parents=True, exist_ok=True)
    (models / "model.joblib").write_bytes(blobs["sklearn"])
    (models / "meta.json").write_text(json.dumps(dict(meta, key=key), indent=2, sort_keys=True, default=str))
    onnx_dir = store.staging / "cache" / "onnx" / key
    onnx_dir.mkdir(parents=True, exist_ok=True)
    (onnx_dir / "model.onnx").write_bytes(blobs["onnx"])
    (onnx_dir / "export.json").write_text(json.dumps(export, indent=2, sort_keys=True, default=str))
    return Hydrated(found, export.get("sha256"))


def reviewed_elsewhere(registry: Registry, name: str, pr: Any) -> Candidate | None:
    """The newest candidate a given pull request published (under another model key)."""
    if pr is None:
        return None
    try:
        mine = [c for c in registry.candidates(name) if c.info.get("pr") == pr]
    except (BackendError, RegistryError):
        return None
    return max(mine, key=lambda c: c.created_at) if mine else None


def not_reviewed(registry: Registry, name: str, key: str, pr: Any, trained_sha: str, why: str | None) -> str:
    """The promotion PR's first line when the deploy trained its own model."""
    where = f"PR #{pr}" if pr is not None else "the merged change"
    head = f"These bytes were not reviewed in {where}: the deploy trained them (ONNX sha256 {trained_sha[:12]})"
    other = reviewed_elsewhere(registry, name, pr)
    if other is not None:
        reviewed = (other.artifacts.get("onnx").sha256 if other.artifacts.get("onnx") else "no ONNX")[:12]
        return f"{head}; {where} reviewed ONNX sha256 {reviewed} (model key {other.model_key[:12]}), and the merged commit's inputs give model key {key[:12]}."
    reason = why or f"the registry {registry.url} holds no candidate for model key {key[:12]} (a fork's PR without registry credentials, a read-only token, or pruned by `mlops gc`)"
    return f"{head}; {reason}."


def gc_command(repo: str | None, config: str | None, older_than: float | None) -> dict[str, Any]:
    """`mlops gc`: candidates older than ``older_than`` days (default from the config)."""
    from mlgitops.config.loader import load_config
    from mlgitops.config.locate import find_config
    from mlgitops.deploy.registry.urls import registry_for

    _root, cpath, rel = find_config(repo, config)
    cfg = load_config(cpath, display=rel)
    days = float(older_than if older_than is not None else cfg.config.registry.candidates_max_age_days)
    registry = registry_for(cfg)
    return {"registry": registry.url, "older_than_days": days, **registry.gc(days)}
