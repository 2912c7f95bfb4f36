"""Data drift of the PR's training data against a reference, with Evidently.

The reference is, in order: a configured file (``drift.reference: path``); the
training data of the deployed model, found through its lineage (the data file at the
commit it was trained from, checked against the recorded sha256); the base ref's
training data. Both sides are sampled (seeded) to ``drift.sample`` rows, so a
million-row table costs seconds; the report states the sample.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlgitops.run.debris import owned_prefix
from mlgitops.config.loader import LoadedConfig
from mlgitops.train.gates import GateResult

DRIFT_GATE = "drift"


@dataclass
class ColumnDrift:
    column: str
    method: str  # Evidently's test, e.g. "K-S p_value", "Wasserstein distance (normed)"
    score: float
    threshold: float
    drifted: bool


@dataclass
class DriftResult:
    reference: str  # what the reference is, for people
    reference_rows: int
    current_rows: int
    sampled: int | None  # rows per side used, when sampled
    columns: list[ColumnDrift]
    drifted: int
    share: float
    seconds: float
    html: str | None = None  # path of the full Evidently report, relative to the repo
    evidently: dict[str, Any] = field(default_factory=dict)  # Evidently's own DriftedColumnsCount

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_table(path: Path, fmt: str | None) -> Any:
    """The whole table of a file (pandas streams it; never its bytes in memory)."""
    import pandas as pd

    from mlgitops.data.load import missing_as_nan

    frame = pd.read_parquet(path) if file_kind(path.name, fmt) == "parquet" else pd.read_csv(path)
    frame.columns = [str(c) for c in frame.columns]
    return missing_as_nan(frame)


def file_kind(name: str, fmt: str | None) -> str:
    return fmt or ("parquet" if name.lower().endswith((".parquet", ".pq")) else "csv")


def sample_file(path: Path, fmt: str | None, sample: int, seed: int) -> Any:
    """A seeded sample of ``sample`` rows of the file (all when 0), streamed; the frame
    carries the file's row count in ``attrs["rows"]`` for the report."""
    from mlgitops.data.load import missing_as_nan
    from mlgitops.data.sampling import read_sample

    got = read_sample(path, file_kind(path.name, fmt), None, sample, seed)
    frame = missing_as_nan(got.frame)
    frame.attrs["rows"] = got.rows
    return frame


def sample_blob(root: Path, sha: str, rel: str, fmt: str | None, sample: int, seed: int, want: str = "") -> tuple[Any, bool]:
    """(sample of ``rel`` at commit ``sha`` or None when absent, whether its sha256
    starts with ``want``): the blob is streamed to a temp file, never held whole."""
    import tempfile

    from mlgitops.gitrepo import GitTree

    with tempfile.TemporaryDirectory(prefix=owned_prefix("ref")) as tmp:
        copy = Path(tmp) / Path(rel).name
        digest = GitTree(root, sha).read_sha256(rel, copy_to=copy)
        if digest is None:
            return None, False
        if not digest.startswith(want):
            return None, False
        return sample_file(copy, fmt, sample, seed), True


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def reference_data(cfg: LoadedConfig, plan: Any) -> tuple[Any, str]:
    """(reference frame or None, what it is / why there is none)."""
    spec = cfg.config.drift
    assert spec is not None
    data = cfg.config.data
    if spec.reference not in ("deployed", "base"):
        path = Path(spec.reference) if Path(spec.reference).is_absolute() else cfg.root / spec.reference
        if not path.is_file():
            from mlgitops.errors import DataError

            raise DataError(f"{cfg.where('drift', 'reference')}: drift.reference: file {spec.reference!r} not found ({path})", hint="name a CSV/Parquet file relative to mlops.yaml, or use `deployed` / `base`")
        return sample_file(path, data.format, spec.sample, spec.seed), f"`{spec.reference}`"
    if data.path.startswith("sklearn:"):
        return None, "the data is a bundled scikit-learn dataset: nothing to drift from"
    base = plan.baseline
    lineage = (base.manifest or {}).get("lineage") or {}
    lineage_why = ""
    if spec.reference == "deployed" and base.kind == "manifest":
        found = lineage_data(plan.root, lineage, base.manifest.get("version"), data.format, spec.sample, spec.seed)
        if found[0] is not None:
            return found
        lineage_why = found[1]
    base_cfg = base.side.cfg if base.side is not None else base.cfg
    if base_cfg is not None and plan.event.base_sha:
        config_dir = Path(plan.config_rel).parent
        base_data = base_cfg.config.data
        if base_data.path.startswith("sklearn:"):
            return None, "the base ref uses a bundled dataset"
        rel = (config_dir / base_data.path).as_posix()
        frame, _ = sample_blob(plan.root, plan.event.base_sha, rel, base_data.format, spec.sample, spec.seed)
        if frame is None:
            frame, why = _dvc_sample(plan.root, plan.event.base_sha, rel, base_data.format, spec.sample, spec.seed)
            if why:
                return None, f"no reference: {why}"
        if frame is None and (cfg.root / base_data.path).is_file():
            frame = sample_file(cfg.root / base_data.path, base_data.format, spec.sample, spec.seed)  # data kept out of git: the same file
        if frame is not None:
            return frame, f"the training data of `{plan.event.base_ref or plan.event.base_sha[:7]}` (`{base_data.path}`)"
    if lineage_why:
        return None, f"no reference: {lineage_why}, and the base ref has no training data to compare with"
    return None, "no reference: nothing is deployed and the base ref has no training data to compare with"


def _dvc_sample(root: Path, sha: str, rel: str, fmt: str | None, sample: int, seed: int) -> tuple[Any, str]:
    """The base commit's version of a DVC-tracked data file, sampled: (frame, "") or
    (None, "") when it is not tracked by DVC there, (None, why) when DVC cannot read it."""
    import tempfile

    from mlgitops.data import dvc
    from mlgitops.errors import DataError
    from mlgitops.gitrepo import GitTree

    pointer = dvc.in_tree(GitTree(root, sha), rel)
    if pointer is None:
        return None, ""
    try:
        raw = dvc.fetch(root, rel, sha, pointer, f"the base ref's {rel!r}")
    except DataError as exc:
        return None, exc.message.splitlines()[0]
    with tempfile.TemporaryDirectory(prefix="mlops-dvc-") as tmp:
        path = Path(tmp) / Path(rel).name
        path.write_bytes(raw)
        return sample_file(path, fmt, sample, seed), ""


def lineage_data(root: Path, lineage: dict[str, Any], version: Any, fmt: str | None, sample: int = 50_000, seed: int = 0) -> tuple[Any, str]:
    """A seeded sample of the training data of a deployed model, from its lineage: the
    data file at the commit it was trained from (or the working tree file, for data
    kept out of git), accepted only when its sha256 matches the recorded one."""
    if not lineage.get("git_sha") or not lineage.get("data_path"):
        return None, "the deployed model's lineage does not name its data file"
    rel, want = str(lineage["data_path"]), str(lineage.get("data_sha256") or "")
    frame, _ = sample_blob(root, str(lineage["git_sha"]), rel, fmt, sample, seed, want)
    local = root / rel
    if frame is None and local.is_file() and _sha256_of(local).startswith(want):
        frame = sample_file(local, fmt, sample, seed)
    if frame is None:
        return None, f"the deployed model's training data (`{rel}` at `{str(lineage['git_sha'])[:7]}`, sha256 {want[:12]}) is not available here"
    return frame, f"the training data of the deployed model{f' v{version}' if version else ''} (`{rel}` at `{str(lineage['git_sha'])[:7]}`)"


def compute_drift(reference: Any, current: Any, columns: list[str], sample: int, seed: int, what: str) -> tuple[DriftResult, Any]:
    """Evidently's drift preset on ``columns``; (plain result, Evidently snapshot)."""
    import warnings

    from evidently import Report
    from evidently.presets import DataDriftPreset

    import pandas as pd

    started = time.perf_counter()
    # A side read as a sample (sample_file) knows its file's row count.
    ref_rows, cur_rows = reference.attrs.get("rows", len(reference)), current.attrs.get("rows", len(current))
    # Columns Evidently cannot compare are drift in their own right: say so, never crash.
    flagged: list[ColumnDrift] = []
    shared = []
    for c in columns:
        if c not in reference.columns or c not in current.columns:
            flagged.append(ColumnDrift(c, "missing from the " + ("reference" if c not in reference.columns else "current data"), 0.0, 0.0, True))
        elif reference[c].isna().all() or current[c].isna().all():
            flagged.append(ColumnDrift(c, "empty (all missing) in the " + ("reference" if reference[c].isna().all() else "current data"), 0.0, 0.0, True))
        elif pd.api.types.is_numeric_dtype(reference[c]) != pd.api.types.is_numeric_dtype(current[c]):
            kinds = ("numeric" if pd.api.types.is_numeric_dtype(reference[c]) else "text", "numeric" if pd.api.types.is_numeric_dtype(current[c]) else "text")
            flagged.append(ColumnDrift(c, f"type changed ({kinds[0]} -> {kinds[1]})", 0.0, 0.0, True))
        else:
            shared.append(c)
    if not shared and not flagged:
        from mlgitops.errors import InputError

        raise InputError("drift: no column to compare", hint="drift.columns must name columns of the data (default: the features)")
    if not shared:
        result = DriftResult(what, ref_rows, cur_rows, None, flagged, len(flagged), 1.0, round(time.perf_counter() - started, 3))
        return result, None
    sampled = None
    if sample and (ref_rows > sample or cur_rows > sample):
        sampled = sample
        reference = reference.sample(n=sample, random_state=seed) if len(reference) > sample else reference
        current = current.sample(n=sample, random_state=seed) if len(current) > sample else current
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Evidently's own deprecation noise
        snapshot = Report([DataDriftPreset(columns=shared)]).run(current_data=current[shared], reference_data=reference[shared])
    raw = snapshot.dict()
    out: list[ColumnDrift] = []
    summary: dict[str, Any] = {}
    for metric in raw["metrics"]:
        config = metric.get("config") or {}
        if config.get("type", "").endswith("DriftedColumnsCount"):
            summary = {"count": float(metric["value"]["count"]), "share": float(metric["value"]["share"])}
        elif config.get("type", "").endswith("ValueDrift"):
            method, threshold, score = str(config.get("method")), float(config.get("threshold")), float(metric["value"])
            # p-values drift when small; distances when large (Evidently's own rule)
            drifted = score < threshold if "p_value" in method else score >= threshold
            out.append(ColumnDrift(str(config.get("column")), method, score, threshold, drifted))
    out = flagged + out
    drifted = sum(c.drifted for c in out)
    share = drifted / len(out) if out else 0.0
    result = DriftResult(what, ref_rows, cur_rows, sampled, out, drifted, share, round(time.perf_counter() - started, 3), evidently=summary)
    return result, snapshot


def _is_p_value(method: str) -> bool:
    return "p_value" in method  # Evidently's statistical tests; the rest are distances


def _column_gates(result: DriftResult | None, limits: dict[str, Any]) -> list[GateResult]:
    """One gate per column limit (drift.columns NAME: {max_score, min_p_value}).

    Evidently picks the test per column from the data: a p-value (K-S, chi-square,
    Z-test; lower means drift) or a distance (Wasserstein, Jensen-Shannon...; higher
    means drift). ``max_score`` holds distances, ``min_p_value`` p-values. A column
    measured the other way than its only limit fails that limit, saying which key
    would apply: comparing numbers of opposite meanings, or quietly skipping a limit
    the user set, would both be a gate that cannot be trusted."""
    out: list[GateResult] = []
    by_name = {c.column: c for c in result.columns} if result is not None else {}
    for name, limit in limits.items():
        wanted = [(rule, key, value) for rule, key, value in (("max", "max_score", limit.max_score), ("min", "min_p_value", limit.min_p_value)) if value is not None]
        if not wanted:
            continue
        col = by_name.get(name)
        if result is None or col is None:
            why = "no reference to compare with" if result is None else "not compared"
            out += [GateResult(DRIFT_GATE, rule, value, None, True, True, f"drift: column {name!r}: {why}: {key} skipped") for rule, key, value in wanted]
            continue
        if col.method.startswith(("missing from", "empty", "type changed")):
            out += [GateResult(DRIFT_GATE, rule, value, None, False, False, f"drift: column {name!r} is {col.method}: it has no score to hold to its {key} {value:g}") for rule, key, value in wanted]
            continue
        p_value = _is_p_value(col.method)
        applies = [w for w in wanted if (w[1] == "min_p_value") == p_value]
        if not applies:
            rule, key, value = wanted[0]
            other = "min_p_value" if p_value else "max_score"
            kind = "a p-value, lower means drift" if p_value else "a distance, higher means drift"
            out.append(GateResult(DRIFT_GATE, rule, value, col.score, False, False, f"drift: column {name!r} was measured with {col.method} ({kind}), so its {key} cannot be checked: set {other} for it (a column may have both)"))
            continue
        rule, key, value = applies[0]
        if rule == "max":
            ok = col.score <= value + 1e-12
            text = f"{col.score:.4g} <= {key} {value:g}" if ok else f"{col.score:.4g} > {key} {value:g} (over by {col.score - value:.4g})"
        else:
            ok = col.score >= value - 1e-12
            text = f"{col.score:.4g} >= {key} {value:g}" if ok else f"{col.score:.4g} < {key} {value:g} (under by {value - col.score:.4g})"
        out.append(GateResult(DRIFT_GATE, rule, value, col.score, ok, False, f"drift: column {name!r}: {col.method} {text}"))
    return out


def drift_gates(result: DriftResult | None, spec: Any) -> list[GateResult]:
    """Every drift gate of ``spec`` (config.Drift), in this order: the share of drifted
    columns, their number (max_drifted_columns), then each column's own limit. Each
    says which limit held or broke and by how much. Metric "drift" throughout (alerts
    and the summary count them as drift); per-column and count limits use the rules
    "max" (a score or count at most) and "min" (a p-value at least)."""
    gates: list[GateResult] = []
    share = drift_gate(result, spec.max_drifted_share)
    if share is not None:
        gates.append(share)
    most = spec.max_drifted_columns
    if most is not None:
        if result is None:
            gates.append(GateResult(DRIFT_GATE, "max", most, None, True, True, "drift: no reference to compare with: max_drifted_columns skipped"))
        else:
            names = [c.column for c in result.columns if c.drifted]
            ok = len(names) <= most
            over = "" if ok else f", {len(names) - most} too many"
            listed = ": " + ", ".join(names) if names else ""
            gates.append(GateResult(DRIFT_GATE, "max", most, len(names), ok, False, f"drift: {len(names)} drifted column(s) {'<=' if ok else '>'} max_drifted_columns {most}{over}{listed}"))
    if isinstance(spec.columns, dict):
        gates += _column_gates(result, spec.columns)
    return gates


def drift_gate(result: DriftResult | None, max_share: float | None) -> GateResult | None:
    if max_share is None:
        return None
    if result is None:
        return GateResult(DRIFT_GATE, "max_drifted_share", max_share, None, True, True, "drift: no reference to compare with: gate skipped")
    ok = result.share <= max_share + 1e-12
    names = ", ".join(c.column for c in result.columns if c.drifted)
    return GateResult(DRIFT_GATE, "max_drifted_share", max_share, result.share, ok, False, f"drift: {result.drifted} of {len(result.columns)} columns drifted ({result.share:.0%} {'<=' if ok else '>'} {max_share:.0%} allowed){f': {names}' if names else ''}")
