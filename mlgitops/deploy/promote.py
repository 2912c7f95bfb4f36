"""Merge to deploy: register the merged model, open promotion / rollback PRs, report status.

Data flows one way: config -> event -> plan (baseline = what the environment runs)
-> flow (the same tasks as a PR run, so the PR's model and ONNX are reused when the
inputs are identical) -> registry -> manifest text -> forge (one PR per environment).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlgitops.config.loader import LoadedConfig
from mlgitops.errors import EXIT_GATE_FAILED, EXIT_OK, InputError
from mlgitops.events.payloads import Event
from mlgitops.forges import PullRef
from mlgitops.deploy.fetch import verify_artifact
from mlgitops.deploy.registry.urls import registry_for
from mlgitops.deploy.manifest import Pin, read_pin, write_pin
from mlgitops.deploy.registry import Registry, RegistryError, Version

BRANCH_PREFIX = "mlops/deploy-"
# A workspace's models: mlops/deploy/<model>/<env>. Not mlops/deploy-<env>/<model>: git
# stores refs as paths, so a branch mlops/deploy-staging (a file) and
# mlops/deploy-staging/churn (under a folder of that name) cannot both exist.
WORKSPACE_BRANCH = "mlops/deploy/{model}/{env}"
PR_MARKER = "<!-- mlgitops:promotion env={env} -->"


@dataclass
class Target:
    """One environment's manifest: where it lives and how relative URIs resolve."""

    env: str
    forge: Any  # DeployForge
    path: str  # manifest path inside its repository
    same_repo: bool
    uri_base: Path  # the folder relative artifact URIs are relative to (mlops.yaml's)
    files: list[Any] = field(default_factory=list)  # config.PinFile: pins in the deploy target's own YAML
    files_base: str = ""  # the folder files[].path is relative to, inside the manifest's repository
    model: str | None = None  # a workspace's model: its own promotion branch per environment

    @property
    def branch(self) -> str:
        if self.model is not None:
            return WORKSPACE_BRANCH.format(model=self.model, env=self.env)
        return f"{BRANCH_PREFIX}{self.env}"

    @property
    def where(self) -> str:
        return f"{self.path}@{self.forge.default_branch()}"

    def text(self) -> str | None:
        return self.forge.read_file(self.forge.default_branch(), self.path)

    def pin(self) -> Pin | None:
        return read_pin(self.text(), self.where)


@dataclass
class Outcome:
    exit_code: int
    message: str
    version: Version | None = None
    pull: PullRef | None = None
    report: Any = None
    details: list[str] = field(default_factory=list)


def environment(cfg: LoadedConfig, env: str) -> Any:
    envs = cfg.config.deploy.environments
    if env not in envs:
        known = ", ".join(envs) or "none: add deploy.environments to mlops.yaml"
        raise InputError(f"unknown environment {env!r} (environments in {cfg.display}: {known})", hint="environments are defined under deploy.environments")
    return envs[env]


def targets(cfg: LoadedConfig, root: Path, make_forge: Any) -> dict[str, Target]:
    """Every environment's Target. ``make_forge(repo_or_None, branch_or_None)`` builds its forge."""
    config_dir = cfg.root.resolve().relative_to(root.resolve()) if cfg.root.resolve() != root.resolve() else Path("")
    out = {}
    for name, env in cfg.config.deploy.environments.items():
        if env.repo:
            out[name] = Target(name, make_forge(env.repo, env.branch), env.manifest, False, cfg.root, list(env.files), "")
        else:
            out[name] = Target(name, make_forge(None, env.branch), (config_dir / env.manifest).as_posix(), True, cfg.root, list(env.files), config_dir.as_posix())
    return out


def artifact_uri(registry: Registry, sha256: str, target: Target) -> str:
    """A remote registry's object URL; for a folder registry, relative to mlops.yaml's
    folder when the registry is inside it and the manifest is in this repo (so the pin
    reads the same on every clone), else an absolute file:// URI."""
    from mlgitops.deploy.registry.backends import FolderBackend

    if not isinstance(registry.backend, FolderBackend):
        return registry.object_uri(sha256)  # s3://..., oci://...: the same on every machine
    path = registry.object_path(sha256).resolve()
    if target.same_repo:
        try:
            return path.relative_to(target.uri_base.resolve()).as_posix()
        except ValueError:
            pass
    return path.as_uri()


def pin_for(record: Version, uri: str) -> Pin:
    onnx = record.deployable
    assert onnx is not None
    keep = ("git_sha", "pr", "branch", "data_path", "data_sha256", "code_sha256", "model_key", "trained_from")
    lineage = {k: (v[:12] if k in ("data_sha256", "code_sha256", "model_key") and isinstance(v, str) else v) for k in keep if (v := record.lineage.get(k)) not in (None, "")}
    lineage["registered_at"] = record.created_at
    metrics = {k: v for k, v in record.metrics.items() if v is not None}
    return Pin(record.name, record.version, uri, onnx.sha256, "onnx", metrics, lineage)


def merged_pr(root: Path, sha: str | None) -> dict[str, Any]:
    """Which PR a commit on the default branch came from, read from git's own messages:
    "Merge pull request #12 from ...", "Title (#12)" (squash), "Merge branch 'feature'"."""
    from mlgitops.gitrepo import git

    if not sha:
        return {}
    subject = git(root, "log", "-1", "--format=%s", sha, check=False)
    m = re.search(r"Merge pull request #(\d+)", subject) or re.search(r"\(#(\d+)\)\s*$", subject)
    if m:
        return {"pr": int(m.group(1))}
    m = re.search(r"Merge branch '([^']+)'", subject)
    return {"branch": m.group(1)} if m else {}


def register(cfg: LoadedConfig, report: Any, key: str, store: Any, registry: Registry, event: Event, origin: dict[str, Any], parent: Pin | None, data_path: str | None = None) -> tuple[Version, bool]:
    """The registry version for this model (and whether it is new): reused when these
    exact bytes were registered before."""
    from mlgitops.plan.store import sha256_file

    # Only an export that passed parity is deployable; with export.on_failure: warn a
    # model whose ONNX disagrees is registered without it (and so never promoted).
    onnx = store.get_onnx(key) if (report.export or {}).get("status") == "ok" else None
    model_dir = store.dir / "cache" / "models" / key
    files: dict[str, tuple[bytes, str]] = {}
    if onnx is not None:
        files["onnx"] = (onnx[0], "onnx")
    joblib_path = model_dir / "model.joblib"
    meta = store.get_model_meta(key) or {}
    if joblib_path.is_file() and sha256_file(joblib_path) == meta.get("model_sha256"):
        files["sklearn"] = (joblib_path.read_bytes(), "joblib")
    existing = registry.find(cfg.config.name, key, onnx[1]["sha256"] if onnx else None)
    if existing is not None:
        return existing, False
    lineage = {
        "model_key": key,
        "data_sha256": meta.get("data_sha256"),
        "code_sha256": meta.get("code_sha256"),
        "code_files": meta.get("code_files"),
        "params": meta.get("params"),
        "trained_with": meta.get("trained_with"),
        "trained_at": meta.get("created_at"),
        "git_sha": event.head_sha,
        "ref": event.head_ref,
        "data_path": data_path,
        "parent_version": parent.version if parent else None,
        "tool_version": report.tool_version,
        **origin,
    }
    metrics = {row.name: row.candidate for row in report.metrics}
    parity = (report.export or {}).get("parity")
    return registry.register(cfg.config.name, files, metrics, lineage, parity, list(meta.get("features") or []), report.task), True


def promotion_body(cfg: LoadedConfig, action: str, target: Target, new: Pin, current: Pin | None, record: Version | None, rows: list[dict[str, Any]] | None, notes: list[str], warning: str | None = None) -> str:
    from mlgitops.report.render import environment as jinja_env

    if rows is None:
        rows = metric_diff(current.metrics if current else {}, new.metrics)
    template = jinja_env(None).get_template("promotion_pr.md.j2")
    return template.render(
        marker=PR_MARKER.format(env=target.env),
        action=action,
        env=target.env,
        name=new.name or cfg.config.name,
        new=new,
        current=current,
        record=record,
        rows=rows,
        notes=notes,
        manifest=target.path,
        warning=warning,
    )


def metric_diff(deployed: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows from recorded metrics (each model's own holdout)."""
    from mlgitops.train.metrics import METRICS

    rows = []
    for name in [*new, *[k for k in deployed if k not in new]]:
        a, b = deployed.get(name), new.get(name)
        spec = METRICS.get(name)
        delta = b - a if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
        better = None if delta is None or spec is None or abs(delta) < 1e-12 else ((delta > 0) == spec.higher_is_better)
        rows.append({"name": name, "deployed": a, "new": b, "delta": delta, "better": better, "up": spec.higher_is_better if spec else True})
    return rows


def open_pull(cfg: LoadedConfig, action: str, target: Target, new: Pin, record: Version | None, rows: list[dict[str, Any]] | None = None, notes: list[str] | None = None, previous: Pin | None = None, held: Pin | None = None, warning: str | None = None) -> tuple[PullRef | None, str]:
    """Open (or update) the environment's one deploy PR; None when it already runs ``new``."""
    text = target.text()
    current = read_pin(text, target.where)
    if current is not None and current.sha256 == new.sha256:
        return None, f"{target.env} already runs {cfg.config.name} {current.short()}; no pull request needed"
    keep_previous = previous if previous is not None else current
    new_text = write_pin(text, target.env, new, keep_previous, held)
    verb = {"deploy": "Deploy", "promote": "Promote", "rollback": "Roll back"}[action]
    title = f"{verb} {new.name or cfg.config.name} {new.short()} to {target.env}" if action != "rollback" else f"Roll back {target.env} to {new.name or cfg.config.name} {new.short()}"
    body = promotion_body(cfg, action, target, new, current, record, rows, notes or [], warning)
    from mlgitops.deploy import pinfiles

    base = target.forge.default_branch()
    files = {target.path: new_text}
    # The deploy target's own files (a KServe storageUri, a Helm value): the same PR
    # edits exactly those values. A missing file or key is exit 2 before anything is pushed.
    files.update(pinfiles.apply(target.env, target.files, new, lambda p: target.forge.read_file(base, p), base=target.files_base))
    pull = target.forge.upsert_pull(base, target.branch, files, title, body)
    what = "opened" if pull.created else ("updated" if pull.changed else "unchanged")
    return pull, f"{what} PR #{pull.number}: {title}"


def close_stale(target: Target, why: str) -> str:
    """Close the environment's open deploy PR: it proposes a model the default branch no
    longer produces (e.g. its change was reverted), and merging it would deploy that."""
    closed = []
    for pull in target.forge.open_pulls(target.branch):
        target.forge.close_pull(pull["number"], why)
        closed.append(f"#{pull['number']}")
    return f"; closed the stale PR {', '.join(closed)}" if closed else ""


def promote(cfg: LoadedConfig, all_targets: dict[str, Target], source: str, dest: str, registry: Registry) -> Outcome:
    environment(cfg, source), environment(cfg, dest)
    src = all_targets[source]
    pin = src.pin()
    if pin is None:
        raise InputError(f"{source} runs no model yet ({src.where} pins nothing)", hint=f"merge a promotion PR for {source} first")
    verify_artifact(pin, src.uri_base, src.where)
    record = _record(registry, pin)
    target = all_targets[dest]
    new = Pin(pin.name, pin.version, pin.uri if target.same_repo == src.same_repo else artifact_uri(registry, pin.sha256, target), pin.sha256, pin.format, pin.metrics, pin.lineage)
    pull, message = open_pull(cfg, "promote", target, new, record, notes=[f"The artifact is the one {source} runs ({src.where})."])
    return Outcome(EXIT_OK, message, record, pull)


def rollback(cfg: LoadedConfig, all_targets: dict[str, Target], env: str, to: int | None, registry: Registry) -> Outcome:
    environment(cfg, env)
    target = all_targets[env]
    current = target.pin()
    if current is None:
        raise InputError(f"{env} runs no model yet ({target.where} pins nothing): nothing to roll back")
    if to is not None:
        record = registry.get(current.name or cfg.config.name, to)
        if record.deployable is None:
            raise RegistryError(f"{record.name} version {to} has no ONNX artifact to deploy", hint="pick a version registered with ONNX")
        registry.load(record)  # refuse a missing or corrupted artifact now, not at serving time
        new = pin_for(record, artifact_uri(registry, record.deployable.sha256, target))
    else:
        prev = current.previous
        if not prev:
            member = f" --config {cfg.display}" if target.model else ""  # a workspace's model: name it
            raise InputError(f"{env} has no previous pin to roll back to ({target.where} has no `previous:`)", hint=f"name a version: mlops rollback {env} --to VERSION{member} (`mlops status{member}` shows the registry's versions)")
        version = prev.get("version")
        record = _record(registry, Pin(current.name, version, str(prev.get("uri")), str(prev.get("sha256"))))
        new = pin_for(record, artifact_uri(registry, record.deployable.sha256, target)) if record and record.deployable else Pin(current.name, version, str(prev["uri"]), str(prev["sha256"]))
        verify_artifact(new, target.uri_base, f"{target.where} (previous)")
    # After the rollback, "previous" is the version being rolled back (a second
    # rollback returns to it).
    notes = [f"Rolls {env} back from {current.short()}.", f"After the merge {env} is held: a push whose model is {current.short()} again does not reopen its promotion; a new model, or `mlops promote`, does."]
    pull, message = open_pull(cfg, "rollback", target, new, record, notes=notes, previous=current, held=current)
    return Outcome(EXIT_OK, message, record, pull)


def _record(registry: Registry, pin: Pin) -> Version | None:
    """The registry record behind a pin, when this machine's registry has it."""
    if pin.version is None or pin.name is None:
        return None
    try:
        record = registry.get(pin.name, pin.version)
    except RegistryError:
        return None
    onnx = record.deployable
    return record if onnx is not None and onnx.sha256 == pin.sha256 else None


def status(cfg: LoadedConfig, all_targets: dict[str, Target]) -> list[dict[str, Any]]:
    """What is deployed where, from the manifests on the default branch (plain data)."""
    from mlgitops.deploy.manifest import ManifestError

    rows = []
    for env, target in all_targets.items():
        row: dict[str, Any] = {"environment": env, "manifest": target.where, "version": None, "sha256": None, "artifact": "", "pending": []}
        try:
            pin = target.pin()
        except ManifestError as exc:
            row["artifact"] = f"manifest unreadable: {exc.message.splitlines()[0]}"
            rows.append(row)
            continue
        if pin is None:
            row["artifact"] = "nothing deployed"
        else:
            row.update(version=pin.version, sha256=pin.sha256, uri=pin.uri, metrics=pin.metrics, previous=(pin.previous or {}).get("version"))
            if pin.held:
                row["held"] = f"held at {pin.short()} after rolling back v{pin.held.get('version')} ({str(pin.held.get('sha256'))[:12]})"
            try:
                verify_artifact(pin, target.uri_base, target.where)
                row["artifact"] = "ok (sha256 verified)"
            except ManifestError as exc:
                row["artifact"] = exc.message.split(": ", 2)[-1]
            if row.get("held"):
                row["artifact"] += f"; {row['held']}"
        row["pending"] = [{"number": p["number"], "title": p.get("title"), "url": p.get("url")} for p in target.forge.open_pulls(target.branch)]
        rows.append(row)
    return rows


def run_deploy(cfg: LoadedConfig, root: Path, config_rel: str, event: Event, all_targets: dict[str, Target], origin: dict[str, Any]) -> Outcome:
    """Train (or reuse the PR's model), gate against what is deployed, register, open the PR."""
    from mlgitops import gitrepo
    from mlgitops.plan.decide import BaselinePlan, make_plan, plan_deployed
    from mlgitops.run.runner import compute_report
    from mlgitops.plan.store import Store

    envs = cfg.config.deploy.environments
    env = cfg.config.deploy.on_merge or (next(iter(envs)) if envs else None)
    target = all_targets.get(env) if env else None
    store = Store(root, trusted=True)  # the default branch's code (a push to it, or `mlops deploy` on the checkout)
    gitrepo.HASHES = gitrepo.HashCache(store.dir / "cache" / "hashes.json")
    text = target.text() if target else None  # one read of the manifest (an API call on GitHub)
    current = read_pin(text, target.where) if target else None
    if target is not None:
        baseline = plan_deployed(cfg, env or "", text, target.where, target.uri_base)
    else:
        baseline = BaselinePlan("none", "no deploy.environments in mlops.yaml: nothing is deployed to compare with", cfg=cfg)
    label = f"{env} {current.short()}" if env and current else (f"{env} (nothing deployed)" if env else None)
    plan = make_plan(cfg, root, config_rel, Event(**{**event.to_dict(), "base_ref": label, "base_sha": None}), baseline)
    registry = registry_for(cfg)
    from mlgitops.deploy.candidates import Hydrated, hydrate, not_reviewed

    # The model the pull request trained and reviewed, from the registry (another
    # runner's cache is out of reach): placed in this run's staged cache, so the flow
    # scores its ONNX export as it would a locally cached one.
    hydrated = hydrate(registry, cfg.config.name, plan.candidate.key, store) if store.get_onnx(plan.candidate.key) is None else None
    if target is not None and current is not None:
        # A merged promotion PR (or a rerun): the environment already runs the model
        # these inputs produce. Answer from fingerprints, without Prefect.
        exported = store.get_onnx(plan.candidate.key)
        known = registry.find(cfg.config.name, plan.candidate.key, exported[1]["sha256"]) if exported else None
        if known is not None and known.deployable is not None and known.deployable.sha256 == current.sha256:
            store.discard()
            closed = close_stale(target, f"{env} already runs {cfg.config.name} {current.short()}, the model the default branch produces now")
            return Outcome(EXIT_OK, f"{env} already runs {cfg.config.name} {current.short()}, the model these inputs produce; nothing to do{closed}", known)
    report = compute_report(cfg, plan, store)
    if not report.passed:
        return Outcome(EXIT_GATE_FAILED, f"not deployed: {report.summary}", report=report)
    data = cfg.config.data.path
    data_path = None if data.startswith("sklearn:") or Path(data).is_absolute() else (Path(config_rel).parent / data).as_posix()
    reused_candidate = isinstance(hydrated, Hydrated) and report.candidate.source == "cache"
    if reused_candidate:
        origin = {**origin, **hydrated.origin()}
    record, created = register(cfg, report, plan.candidate.key, store, registry, event, origin, current, data_path)
    verb = "registered" if created else "reusing registered"
    if record.deployable is None:
        why = (report.export or {}).get("message") or "ONNX export is off"
        return Outcome(EXIT_OK, f"{verb} {record.name} v{record.version} without ONNX ({why}); nothing to promote, `mlops serve` needs ONNX", record, report=report)
    if target is None:
        return Outcome(EXIT_OK, f"{verb} {record.name} v{record.version}; no deploy.environments to promote it to", record, report=report)
    new = pin_for(record, artifact_uri(registry, record.deployable.sha256, target))
    if current is not None and current.held and current.held.get("sha256") == new.sha256:
        held = f"held: {env} stays at {current.short()} after rolling back v{current.held.get('version')}; this push produces that model again (sha256 {new.sha256[:12]}), so no promotion PR is opened. A new model, or `mlops promote`, lifts the hold"
        return Outcome(EXIT_OK, f"{verb} {record.name} v{record.version}; {held}", record, report=report)
    warning = None
    if report.candidate.source != "cache":  # trained now: no run with these inputs left its model here or in the registry
        pr = origin.get("pr") if isinstance(origin, dict) else None
        warning = not_reviewed(registry, cfg.config.name, plan.candidate.key, pr, new.sha256, hydrated if isinstance(hydrated, str) else None)
    rows = [{"name": r.name, "deployed": r.base, "new": r.candidate, "delta": r.delta, "better": None if r.change in ("same", "n/a") else r.change == "better", "up": r.higher_is_better} for r in report.metrics]
    if report.baseline.source == "none":
        notes = [f"{report.baseline.note[0].upper()}{report.baseline.note[1:]}."]
    elif report.baseline.scored_on == "the candidate's holdout":
        how = "both through ONNX Runtime, as they serve" if plan.candidate.key in store.refused and report.candidate.source == "cache" else "the deployed one through ONNX Runtime, as it serves"
        notes = [f"Both models scored on the same holdout ({report.data['holdout_rows']} rows); {how}."]
    else:
        notes = ["Deployed metrics are those recorded when it was registered (it could not score this holdout)."]
    pull, message = open_pull(cfg, "deploy", target, new, record, rows, notes, warning=warning)
    if pull is None:
        message += close_stale(target, f"{env} already runs {new.short()}, the model the default branch produces now")
    how = model_origin(report.candidate.source == "cache", plan.candidate.key in store.refused)
    details = [f"model: {how}", f"artifact: sha256 {new.sha256[:12]} ({new.uri})"]
    if reused_candidate:
        details.insert(0, hydrated.line())
    elif warning:
        details.insert(0, f"warning: {warning}")
    return Outcome(EXIT_OK, f"{verb} {record.name} v{record.version}; {message}", record, pull, report, details)


def model_origin(reused: bool, refused: bool) -> str:
    """How the deploy got its model, for the outcome's details. ``refused``: the cached
    pickle was written by a pull-request run, which a trusted run never unpickles."""
    if reused and refused:
        return "reused the model trained for the pull request (same data, params, code and libraries): its ONNX export, scored through ONNX Runtime; its pickle is registered as bytes, never unpickled by this trusted run"
    if reused:
        return "reused the model trained for the pull request (same data, params, code and libraries)"
    if refused:
        return "trained now: the cached model was written by a pull-request run, and a trusted run never unpickles those"
    return "trained now: no earlier run had these inputs"
