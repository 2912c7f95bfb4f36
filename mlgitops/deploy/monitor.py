"""`mlops monitor --current PATH`: recent data against what the deployed model learned.

Data flows one way: config -> the environment's pin (manifest on the default branch)
-> its training data through the lineage -> Evidently drift of the recent data, and
live metrics when the recent data has labels -> one issue (opened or updated) and,
when asked, one retraining PR that moves `data.path` to the new snapshot so the
normal PR loop retrains and gates it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlgitops.config.loader import LoadedConfig
from mlgitops.errors import EXIT_GATE_FAILED, EXIT_OK, DataError, InputError
from mlgitops.train.gates import GateResult, check_gates
from mlgitops.deploy.fetch import verify_artifact

ISSUE_MARKER = "<!-- mlgitops:monitor name={name} env={env} -->"
RETRAIN_BRANCH = "mlops/retrain-{name}"
DEFAULT_MAX_DRIFTED_SHARE = 0.3


@dataclass
class MonitorOutcome:
    exit_code: int
    message: str
    drift: dict[str, Any] | None
    metrics: dict[str, float | None] | None
    gates: list[GateResult] = field(default_factory=list)
    issue: Any = None
    pull: Any = None


def read_current(path: Path, shown: str, fmt: str | None) -> Any:
    """The recent data, or a DataError naming the file (exit 2)."""
    from mlgitops.data.drift import read_table

    if not path.is_file():
        raise DataError(f"--current {shown}: file not found", hint="pass the CSV or Parquet file of recent (production) data to compare with the deployed model's training data")
    with open(path, "rb") as fh:  # empty, or only blank lines: pandas would say less
        empty = not fh.read(1 << 16).strip()
    if empty:
        raise DataError(f"--current {shown}: the file is empty", hint="export the recent data with a header row")
    try:
        frame = read_table(path, fmt)
    except Exception as exc:  # pandas/pyarrow parse errors come in many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"--current {shown}: cannot read it as {'Parquet' if path.suffix.lower() in ('.parquet', '.pq') else 'CSV'}: {first}") from None
    if len(frame) == 0:
        raise DataError(f"--current {shown}: the file has a header but no rows")
    return frame


def run_monitor(cfg: LoadedConfig, root: Path, config_rel: str, current_path: Path, shown: str, target: Any, retrain: bool, own_forge: Any = None) -> MonitorOutcome:
    from mlgitops.data.drift import compute_drift, lineage_data, sample_file
    from mlgitops.train.evaluate import evaluate
    from mlgitops.deploy.onnx import OnnxModel

    pin = target.pin()
    if pin is None:
        raise InputError(f"nothing is deployed to {target.env} ({target.where} pins no model): nothing to monitor", hint="merge a promotion PR first (see `mlops status`)")
    model = OnnxModel(verify_artifact(pin, target.uri_base, target.where))
    current = read_current(current_path, shown, cfg.config.data.format)
    target_col = cfg.config.data.target
    if retrain and (target_col not in current.columns or current[target_col].isna().all()):
        raise DataError(f"--current {shown}: --retrain-pr needs the target column {target_col!r} with values, to train on", hint="export the labels with the recent data, or run without --retrain-pr")
    features = model.features
    missing = [f for f in features if f not in current.columns]
    if missing:
        raise DataError(f"--current {shown}: lacks the column(s) the deployed model needs: {', '.join(map(repr, missing[:8]))}", hint="export every feature column the model was trained on")
    spec = cfg.config.drift
    sample, seed = (spec.sample, spec.seed) if spec else (50_000, 0)
    if spec is not None and spec.reference not in ("deployed", "base"):
        ref_path = Path(spec.reference) if Path(spec.reference).is_absolute() else cfg.root / spec.reference
        if not ref_path.is_file():
            raise DataError(f"{cfg.where('drift', 'reference')}: drift.reference: file {spec.reference!r} not found ({ref_path})", hint="name a CSV/Parquet file relative to mlops.yaml, or use `deployed` / `base`")
        reference, what = sample_file(ref_path, cfg.config.data.format, sample, seed), f"`{spec.reference}`"
    else:
        reference, what = lineage_data(root, pin.lineage, pin.version, cfg.config.data.format, sample, seed)
    threshold = spec.max_drifted_share if spec is not None and spec.max_drifted_share is not None else DEFAULT_MAX_DRIFTED_SHARE
    drift: dict[str, Any] | None = None
    gates: list[GateResult] = []
    if reference is not None:
        result, _snapshot = compute_drift(reference, current, features, sample, seed, what)
        drift = result.to_dict()
        names = ", ".join(c.column for c in result.columns if c.drifted)
        ok = result.share <= threshold + 1e-12
        gates.append(GateResult("drift", "max_drifted_share", threshold, result.share, ok, False, f"drift: {result.drifted} of {len(result.columns)} columns drifted ({result.share:.0%} {'<=' if ok else '>'} {threshold:.0%} allowed){f': {names}' if names else ''}"))
    else:
        drift = {"unavailable": what}
    metrics = None
    if target_col in current.columns and current[target_col].notna().any():
        labelled = current[current[target_col].notna()]
        task = model.task
        labels = list(model.classes_ or [])
        metrics = evaluate(model, labelled, features, target_col, task, labels, cfg.metric_names(task)).metrics
        gates += check_gates(cfg.gated_metrics(), metrics, {k: v for k, v in pin.metrics.items() if isinstance(v, (int, float))}, "no metrics recorded with the deployed model")
    over = [g for g in gates if not g.passed]
    outcome = MonitorOutcome(EXIT_GATE_FAILED if over else EXIT_OK, "", drift, metrics, gates)
    body = issue_body(cfg, target, pin, shown, current, drift, metrics, gates)
    marker = ISSUE_MARKER.format(name=cfg.config.name, env=target.env)
    forge = own_forge or target.forge
    if over:
        from mlgitops.forges.github import ForgeError

        try:
            outcome.issue = forge.upsert_issue(marker, f"{cfg.config.name} in {target.env}: {over[0].message}", body)
            what_issue = f"{'opened' if outcome.issue.created else 'updated'} issue #{outcome.issue.number}"
        except ForgeError as exc:  # e.g. a token without `issues: write`: the alert and the exit code carry it
            what_issue = f"no issue ({exc.message})"
        from mlgitops.forges import alerts

        link = outcome.issue.url if outcome.issue else None
        for kind, failing in (("drift", [g for g in over if g.metric == "drift"]), ("gate_failure", [g for g in over if g.metric != "drift"])):
            if failing:  # one alert per kind, so `alerts.on` can pick either
                alerts.send(kind, f"{target.env}: {failing[0].message}", [g.message for g in failing], link)
        if retrain:
            outcome.pull = retraining_pull(cfg, root, config_rel, current_path, forge, target.env, body)
        outcome.message = f"{cfg.config.name} in {target.env}: {len(over)} check(s) over threshold; {what_issue}" + (f"; retraining PR #{outcome.pull.number}" if outcome.pull else "")
    else:
        outcome.message = f"{cfg.config.name} in {target.env}: within thresholds ({'; '.join(g.message for g in gates) or 'no reference and no labels to check'})"
    return outcome


def issue_body(cfg: LoadedConfig, target: Any, pin: Any, shown: str, current: Any, drift: dict[str, Any] | None, metrics: dict[str, float | None] | None, gates: list[GateResult]) -> str:
    from mlgitops.report.render import environment

    return environment(None).get_template("monitor_issue.md.j2").render(
        marker=ISSUE_MARKER.format(name=cfg.config.name, env=target.env), name=cfg.config.name, env=target.env, pin=pin, current=shown, rows=len(current), drift=drift, metrics=metrics, recorded=pin.metrics, gates=gates
    )


def retraining_pull(cfg: LoadedConfig, root: Path, config_rel: str, current_path: Path, forge: Any, env: str, body: str) -> Any:
    """A PR that points `data.path` at the new snapshot (adding the file when it is not
    in the repository yet); only that line of mlops.yaml changes."""
    from ruamel.yaml import YAML

    config_dir = Path(config_rel).parent
    try:
        rel = current_path.resolve().relative_to(cfg.root.resolve()).as_posix()
        inside = True
    except ValueError:
        rel, inside = f"data/snapshots/{current_path.name}", False
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    text = cfg.path.read_text(encoding="utf-8")
    doc = y.load(text)
    doc["data"]["path"] = rel
    out = io.StringIO()
    y.dump(doc, out)
    files: dict[str, str | bytes] = {(config_dir / Path(cfg.path.name)).as_posix(): out.getvalue()}
    if not inside or not (root / config_dir / rel).is_file():
        files[(config_dir / rel).as_posix()] = current_path.read_bytes()
    else:
        files[(config_dir / rel).as_posix()] = (root / config_dir / rel).read_bytes()
    title = f"Retrain {cfg.config.name} on {rel}"
    note = f"Opened by `mlops monitor`: the data of {env} moved away from what the deployed model learned. This PR moves `data.path` to the new snapshot; the pull-request flow retrains and gates it as usual.\n\n"
    return forge.upsert_pull(forge.default_branch(), RETRAIN_BRANCH.format(name=cfg.config.name), files, title, note + body)


def monitor_command(current: str, env: str | None, retrain_pr: bool, config: str | None, repo: str | None, forge: str, token: str | None) -> Any:
    """`mlops monitor`: the environment to check, its deployed model, then :func:`run_monitor`."""
    from mlgitops.config.loader import load_config
    from mlgitops.config.locate import find_config
    from mlgitops.deploy.promote import environment
    from mlgitops.forges.factory import deploy_targets, forge_maker

    root, cpath, rel = find_config(repo, config)
    cfg = load_config(cpath, display=rel)
    envs = cfg.config.deploy.environments
    name = env or cfg.config.deploy.baseline or next(iter(envs), None)
    if name is None:
        raise InputError(f"{cfg.display} has no deploy.environments: there is no deployed model to monitor", hint="add deploy.environments and deploy a model first")
    environment(cfg, name)
    target = deploy_targets(cfg, root, forge, token)[name]
    path = Path(current) if Path(current).is_absolute() else Path.cwd() / current
    own = forge_maker(cfg, root, forge, token)(None, None)  # the issue and the PR belong to this repo
    return run_monitor(cfg, root, rel, path, current, target, retrain_pr, own)
