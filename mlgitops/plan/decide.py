"""Decide what a PR run needs, from fingerprints alone (no pandas, sklearn or Prefect).

The plan names the candidate's and the baseline's cache keys; with both models and
the run report already cached, the runner answers without starting Prefect.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any


from mlgitops.config.loader import Config, LoadedConfig, parse_config
from mlgitops.data.rules import missing_file
from mlgitops.errors import ConfigError
from mlgitops.events.payloads import Event
from mlgitops.plan.fingerprint import code_fingerprint, combine, data_fingerprint, model_key
from mlgitops.gitrepo import GitTree, Prefixed, WorkTree


@dataclass
class SidePlan:
    """One model to obtain: the candidate, or the baseline trained from the base ref."""

    cfg: LoadedConfig
    key: str
    data_sha: str
    data_where: str
    code_sha: str
    code_files: list[str]
    #: the config whose security-relevant settings (training.env, sweep address) apply
    #: when this side trains: the base ref's for a PR's candidate; None: none is trusted
    trusted: Config | None = None


@dataclass
class BaselinePlan:
    kind: str  # "none" | "manifest" | "train"
    note: str = ""
    side: SidePlan | None = None
    manifest: dict[str, Any] = field(default_factory=dict)  # env, path, uri, sha256, version, metrics
    artifact: Path | None = None
    cfg: LoadedConfig | None = None  # the base ref's config, when it has a valid one


@dataclass
class RunPlan:
    root: Path
    config_rel: str
    event: Event
    candidate: SidePlan
    baseline: BaselinePlan
    run_key: str
    retrain: str | None = None  # why the candidate is retrained from scratch (e.g. `/mlops retrain` by @alice)


def _side(cfg: LoadedConfig, tree: Any, fallback: Any | None, label: str) -> SidePlan | str:
    data = cfg.config.data
    fp = data_fingerprint(data.path, tree, fallback)
    if fp.sha256 is None:
        return f"data file {data.path!r} is not in {label}"
    holdout_sha = None
    if data.holdout.path:
        hfp = data_fingerprint(data.holdout.path, tree, fallback)
        if hfp.sha256 is None:
            return f"holdout file {data.holdout.path!r} is not in {label}"
        holdout_sha = hfp.sha256
    code_sha, files = code_fingerprint(cfg.config, tree)
    return SidePlan(cfg, model_key(cfg.config, fp.sha256, holdout_sha, code_sha), fp.sha256, fp.where, code_sha, files)


def plan_candidate(cfg: LoadedConfig, root: Path) -> SidePlan:
    side = _side(cfg, WorkTree(cfg.root), None, "the working tree")
    if isinstance(side, str):
        data = cfg.config.data
        key, rel = (("data", "path"), data.path) if "data file" in side else (("data", "holdout", "path"), data.holdout.path or "")
        raise missing_file(cfg, key, rel, cfg.root / rel)
    return side


def _pinned(manifest_text: bytes, root: Path, where: str) -> tuple[dict[str, Any], Path | None, str]:
    """The deployed model a manifest pins: (info, artifact path, "") or ({...}, None, why not)."""
    from mlgitops.deploy.manifest import ManifestError, read_pin, resolve_uri

    try:
        pin = read_pin(manifest_text, where)
    except ManifestError as exc:
        return {}, None, exc.message.splitlines()[0]
    if pin is None:
        return {}, None, "manifest pins no model yet (model.uri and model.sha256)"
    info = {"uri": pin.uri, "sha256": pin.sha256, "version": pin.version, "metrics": pin.metrics, "format": pin.format, "lineage": pin.lineage}
    from mlgitops.errors import InputError
    from mlgitops.deploy.fetch import cache_path, fetch_remote

    try:
        remote = fetch_remote(pin, where)  # s3://, oci://: verified, through the local cache
    except InputError as exc:
        return info, None, exc.message.splitlines()[0]
    if remote is not None:
        if pin.format != "onnx":  # a pickle in a shared registry may have been written by pull request code
            return info, None, f"pinned artifact {pin.uri} has format {pin.format!r}; a remote registry's pins are read as ONNX only"
        cached = cache_path(pin.sha256)
        if not cached.is_file():  # the cache is best effort (e.g. a read-only home): a temp copy, swept with the run's debris
            import tempfile

            from mlgitops.run.debris import owned_prefix

            cached = Path(tempfile.mkdtemp(prefix=owned_prefix("base"))) / "model.onnx"
            cached.write_bytes(remote)
        return info, cached, ""
    try:
        path = resolve_uri(pin.uri, root)
    except ManifestError as exc:
        return info, None, exc.message
    if not path.is_file():
        return info, None, f"pinned artifact {pin.uri} is not on this machine"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != pin.sha256:
        return info, None, f"pinned artifact {pin.uri} has sha256 {digest[:12]}, not the pinned {pin.sha256[:12]}; refusing it"
    if pin.format not in ("onnx", "joblib"):
        return info, None, f"pinned artifact {pin.uri} has format {pin.format!r}; expected onnx or joblib"
    return info, path, ""


def plan_baseline(root: Path, config_rel: str, base_ref: str | None, base_sha: str | None) -> BaselinePlan:
    if base_sha is None:
        return BaselinePlan("none", "no base ref given: no baseline to compare with")
    tree = GitTree(root, base_sha)
    raw = tree.read_bytes(config_rel)
    shown_ref = base_ref or base_sha[:7]
    if raw is None:
        return BaselinePlan("none", f"`{shown_ref}` has no {config_rel} yet: nothing to compare with")
    try:
        cfg = parse_config(raw.decode("utf-8", "replace"), root / config_rel, f"{config_rel}@{shown_ref}")
    except ConfigError as exc:
        return BaselinePlan("none", f"the {config_rel} on `{shown_ref}` is invalid, so it has no baseline ({exc.problems[0]})")
    notes: list[str] = []
    deploy = cfg.config.deploy
    if deploy.environments:
        env = deploy.baseline or next(iter(deploy.environments))
        manifest_path = deploy.environments[env].manifest
        text = tree.read_bytes((Path(config_rel).parent / manifest_path).as_posix())
        if text is None:
            notes.append(f"no model is deployed to {env} yet ({manifest_path} is not on `{shown_ref}`)")
        else:
            info, artifact, why = _pinned(text, cfg.root, f"{manifest_path}@{shown_ref}")
            if artifact is not None:
                info = {"env": env, "path": manifest_path, **info}
                return BaselinePlan("manifest", f"deployed in {env} (pinned in {manifest_path} on `{shown_ref}`)", manifest=info, artifact=artifact, cfg=cfg)
            notes.append(f"nothing usable is pinned for {env}: {why}")
    parent = Path(config_rel).parent.as_posix()
    config_dir = "" if parent == "." else parent
    side = _side(cfg, Prefixed(tree, config_dir), WorkTree(cfg.root), f"`{shown_ref}` nor in the working tree")
    if isinstance(side, str):
        return BaselinePlan("none", "; ".join([*notes, f"cannot train the baseline: {side}"]), cfg=cfg)
    side.trusted = cfg.config  # the base ref's own config and code: trusted as merged
    what = f"the baseline is what `{shown_ref}`'s own config, code and data produce"
    note = f"{'; '.join(notes)}, so {what}" if notes else what[0].upper() + what[1:]
    return BaselinePlan("train", note, side=side, cfg=cfg)


def plan_deployed(cfg: LoadedConfig, env: str, manifest_text: str | None, manifest_where: str, uri_base: Path) -> BaselinePlan:
    """The baseline of a deploy: the model the environment runs now (or none)."""
    if manifest_text is None:
        return BaselinePlan("none", f"nothing is deployed to {env} yet ({manifest_where} does not exist)", cfg=cfg)
    info, artifact, why = _pinned(manifest_text.encode(), uri_base, manifest_where)
    if artifact is None:
        return BaselinePlan("none", f"nothing usable is deployed to {env}: {why}", cfg=cfg)
    return BaselinePlan("manifest", f"deployed in {env} ({manifest_where})", manifest={"env": env, "path": manifest_where, **info}, artifact=artifact, cfg=cfg)


def make_plan(cfg: LoadedConfig, root: Path, config_rel: str, event: Event, baseline: BaselinePlan | None = None) -> RunPlan:
    candidate = plan_candidate(cfg, root)
    if baseline is None:
        baseline = plan_baseline(root, config_rel, event.base_ref, event.base_sha)
    # The PR must not choose what its own code may see: the base ref's config decides (a
    # deploy's baseline config is the merged one). A local run with no base is the user's own.
    own_run = event.kind == "local" and event.base_sha is None
    candidate.trusted = baseline.cfg.config if baseline.cfg is not None else (cfg.config if own_run else None)
    base_id = baseline.side.key if baseline.side else (baseline.manifest or baseline.note)
    # Everything the report shows: both models' inputs and both configs in full
    # (gates, metrics, name, deploy...), so a reused report is never stale.
    base_config = baseline.cfg.config.model_dump(mode="json") if baseline.cfg else None
    run_key = combine("pr-run", version("mlgitops"), candidate.key, base_id, baseline.kind, cfg.config.model_dump(mode="json"), base_config)
    return RunPlan(root, config_rel, event, candidate, baseline, run_key)
