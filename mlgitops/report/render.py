"""Render a :class:`Report`: the PR comment (Jinja2), JSON, and the terminal table."""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field, replace
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import jinja2
import jinja2.sandbox
from jinja2.loaders import split_template_path

from mlgitops.report.charts import comment_charts
from mlgitops.report.model import MetricRow, Report

if TYPE_CHECKING:
    from mlgitops.config.loader import LoadedConfig

GITHUB_COMMENT_LIMIT = 65_536  # characters; GitHub rejects longer issue comments
STAMP_ROOM = 128  # the forge appends `<!-- mlgitops:sha=... -->` after rendering
TRUNCATION_NOTE = "\n\n> ⚠️ This comment was truncated to fit GitHub's 65,536-character limit. Run `mlops run --json` for the full report.\n"
RULE_TEXT = {"min": "≥ {t:g}", "max": "≤ {t:g}", "max_drop": "drop ≤ {t:g}", "max_drop_pct": "drop ≤ {t:g}%", "parity": "ONNX parity", "export": "ONNX export", "contract": "data contract", "max_drifted_share": "drifted ≤ {t:.0%}", "tracking": "MLflow tracking"}


def marker(name: str) -> str:
    """Hidden HTML comment that identifies our comment for updates (one per model name)."""
    return f"<!-- mlgitops:pr-report name={name} -->"


def _num(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4f}"


def _delta(row: MetricRow) -> str:
    if row.delta is None:
        return ""
    if row.change == "same":
        return "0"
    sign = "+" if row.delta > 0 else "−"
    text = f"{sign}{_num(abs(row.delta))}"
    if row.delta_pct is not None:
        text += f" ({sign}{abs(row.delta_pct):.1f}%)"
    return text + (" 🟢" if row.change == "better" else " 🔴")


def _show(value: Any) -> str:
    if value is None:
        return "_(unset)_"
    return f"`{json.dumps(value) if not isinstance(value, str) else value}`"


def _short(value: str | None, n: int = 12) -> str:
    return (value or "")[:n]


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|")


def environment(template_dir: Path | None = None, overrides: jinja2.BaseLoader | None = None) -> jinja2.Environment:
    """Built-in templates, overridden by files of the same name in ``template_dir`` (or
    from ``overrides``). Sandboxed: a template reaches only the data it is given (no
    attributes starting with ``_``, no mutation, no ``lipsum``/``cycler`` globals)."""
    builtin = files("mlgitops.templates")

    def load_builtin(name: str) -> str | None:
        res = builtin.joinpath(*split_template_path(name))  # like FileSystemLoader: no `..`, `/x` is x in the folder
        return res.read_text(encoding="utf-8") if res.is_file() else None

    loaders: list[jinja2.BaseLoader] = []
    if overrides is not None:
        loaders.append(overrides)
    if template_dir is not None:
        loaders.append(jinja2.FileSystemLoader(str(template_dir)))
    loaders.append(jinja2.FunctionLoader(load_builtin))
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(loader=jinja2.ChoiceLoader(loaders), undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    for name in ("lipsum", "cycler", "joiner"):  # functions whose globals a template has no business with
        env.globals.pop(name, None)
    env.filters.update(num=_num, delta=_delta, show=_show, short=_short, cell=_cell)
    return env


def git_loader(root: Path, sha: str, folder: str) -> jinja2.BaseLoader:
    """Templates as committed at ``sha`` under ``folder`` (repo-relative), read with git."""
    from mlgitops.gitrepo import GitTree

    tree = GitTree(root, sha)

    def load(name: str) -> tuple[str, str, Callable[[], bool] | None] | None:
        rel = posixpath.normpath(posixpath.join(folder, *split_template_path(name)))  # nothing outside the folder
        raw = tree.read_bytes(rel)
        if raw is None:
            return None
        return raw.decode(errors="replace"), rel, None  # uptodate None: a commit never changes

    return jinja2.FunctionLoader(load)


@dataclass
class Templates:
    """The override templates of one run, and where errors in them point."""

    where: str  # `file:line:col` of the report.templates that applies
    template_dir: Path | None = None  # the working tree's folder (no base ref: the user's own run)
    loader: jinja2.BaseLoader | None = None  # the base ref's folder, read from git
    notes: list[str] = field(default_factory=list)


def run_templates(cfg: "LoadedConfig", base_cfg: "LoadedConfig | None", base_sha: str | None, root: Path, config_rel: str) -> Templates:
    """Which templates render this run's comment. A pull request cannot change what the
    bot says about it: with a base commit, the base config's ``report.templates`` as
    committed there apply (none there: the built-in ones); the branch's apply after merge.
    With no base (a deploy of the default branch, a local run), the working tree's apply."""
    from mlgitops.errors import ConfigError

    own = cfg.config.report.templates
    if base_sha is None:
        if own is None:
            return Templates(cfg.where("report"))
        folder = cfg.root / own
        if not folder.is_dir():
            raise ConfigError([f"{cfg.where('report', 'templates')}: report.templates: folder {own!r} not found"])
        return Templates(cfg.where("report", "templates"), template_dir=folder)
    base = base_cfg.config.report.templates if base_cfg is not None else None
    notes = []
    if own is not None or base is not None:
        which = "the base ref's templates" if base is not None else "the built-in templates"
        notes.append(f"Custom templates come from the base ref: this comment uses {which}; template changes made on this branch apply after merge.")
    if base is None or base_cfg is None:
        return Templates(cfg.where("report"), notes=notes)
    config_dir = posixpath.dirname(config_rel)
    folder = posixpath.normpath(posixpath.join(config_dir, base))
    return Templates(base_cfg.where("report", "templates"), loader=git_loader(root, base_sha, folder), notes=notes)


def gate_cells(report: Report) -> dict[str, str]:
    cells: dict[str, list[str]] = {}
    for g in report.gates:
        icon = "⏭️" if g.skipped else ("✅" if g.passed else "❌")
        tolerance = f" (+{g.tolerance:g} tolerance)" if g.tolerance else ""
        cells.setdefault(g.metric, []).append(f"{icon} {RULE_TEXT[g.rule].format(t=g.threshold)}{tolerance}")
    return {row.name: ", ".join(cells.get(row.name, [])) for row in report.metrics}


def _model_text(info: Any) -> str:
    if info.source == "none":
        return info.note or "none"
    how = {"trained": "trained in this run", "cache": "reused from the cache (same data, params and code)", "manifest": f"the deployed model{f' version {info.version}' if info.version else ''}"}[info.source]
    parts = [info.note, how] if info.role == "baseline" and info.note else [how]
    if info.train_seconds is not None and info.source == "trained":
        parts.append(f"fit in {info.train_seconds:.1f} s")
    if info.trained_with:
        parts.append(f"with `{info.trained_with}`")
    if info.scored_on:
        parts.append(f"scored on {info.scored_on}")
    return "; ".join(parts)


def contract_rows(report: Report) -> dict[str, Any] | None:
    """The data contract for the comment: every check, broken ones first."""
    checks = report.contract
    if checks is None:
        return None
    broken = [c for c in checks if not c["passed"]]
    return {"checks": broken + [c for c in checks if c["passed"]], "broken": len(broken), "total": len(checks)}


def onnx_line(report: Report) -> str:
    """One line on the ONNX artifact: its hash (what the deploy will pin) and parity."""
    ex = report.export
    if not ex or ex.get("status") == "disabled":
        return ""
    if ex["status"] in ("ok", "parity_failed"):
        icon = "✅" if ex["status"] == "ok" else ("❌" if ex.get("enforced", True) else "⚠️")
        digest = f" sha256 `{ex['sha256'][:12]}`" if ex.get("sha256") else ""
        size = f" ({ex['bytes'] / 1024:.1f} kB)" if ex.get("bytes") else ""  # both always set by export_model; a hand-made report may lack them
        return f"{icon} `model.onnx`{digest}{size}: ONNX Runtime vs the fitted model: {ex['message']}"
    icon = "❌" if ex.get("enforced", True) else "⚠️"
    return f"{icon} {ex['message']}"


def footer(report: Report) -> str:
    total = report.timings.get("total")
    bits = [f"mlgitops {report.tool_version}"]
    if total is not None:
        bits.append(f"run time {total:.1f} s")
    if report.reused:
        bits.append("inputs unchanged since the last run: result reused without retraining")
    return " · ".join(bits)


def spread_cells(report: Report) -> dict[str, str]:
    """Under training.repeats: each metric's range over the seeds, after its mean."""
    metrics = (report.repeats or {}).get("metrics") or {}
    out = {}
    for row in report.metrics:
        m = metrics.get(row.name)
        out[row.name] = f" ({_num(m['min'])}–{_num(m['max'])})" if m else ""
    return out


def repeats_line(report: Report) -> str:
    """One line saying the candidate's metrics are means over seeds, and their spread."""
    rep = report.repeats
    if not rep:
        return ""
    seeds = rep["seeds"]
    shown = ", ".join(f"{name} ±{_num(m['std'])}" for name, m in rep["metrics"].items() if m)
    return f"Candidate metrics are the mean of {rep['count']} trainings with seeds {seeds[0]}–{seeds[-1]} (`training.repeats`); the gates use the mean, (min–max) is the range over the seeds; standard deviation: {shown}."


def unstable_warning(report: Report) -> str:
    """The first lines when two trainings of identical inputs disagreed."""
    repro = report.reproducibility
    if not repro or repro.get("same", True):
        return ""
    moved = ", ".join(f"{m['metric']} {_num(m['before'])} → {_num(m['now'])}" for m in repro["moved"])
    when = f" on {repro['against']}" if repro.get("against") else ""
    return (
        "> ⚠️ **This verdict is unstable: training is not reproducible.** Training these same inputs (data, config, code, "
        f"seed {repro.get('seed')}) again gave other metrics than{when} ({moved}), so a rerun can flip the gate. "
        "To fix it: set `random_state` in `training.params`, seed your training script from the `MLOPS_SEED` environment "
        "variable (e.g. `RandomForestClassifier(random_state=int(os.environ[\"MLOPS_SEED\"]))`), or set `training.repeats` "
        "to gate on the mean of several seeds."
    )


HOLDOUT_WARNING = "> ⚠️ **The training code read the holdout.** `training.command` uses `{holdout}` (`training.allow_holdout: true`), so the rows these gates score were visible to the pull request's code: the scores may be optimistic."
AFTER_MERGE = {
    "training.env": "`training.env` changes take effect after merge: the training command of this run saw the base ref's list.",
}


def holdout_read(report: Report) -> bool:
    """Whether the candidate's training command was handed the holdout."""
    return "{holdout}" in (report.candidate.trained_with or "")


def run_notes(report: Report) -> list[str]:
    """Notes the bot adds whatever the template: settings a PR changes that apply after merge."""
    keys = {c.key.partition("[")[0] for c in report.config_changes}
    return [text for prefix, text in AFTER_MERGE.items() if any(k == prefix or k.startswith(prefix + ".") for k in keys)]


def render_comment(report: Report, template_dir: Path | None = None, limit: int = GITHUB_COMMENT_LIMIT - STAMP_ROOM, templates: Templates | None = None) -> str:
    """The PR comment, never longer than ``limit`` characters. ``templates`` (see
    :func:`run_templates`) wins over ``template_dir``."""
    if templates is not None:
        env = environment(templates.template_dir, templates.loader)
        extra = templates.notes
    else:
        env = environment(template_dir)
        extra = []
    report = replace(report, notes=[*report.notes, *run_notes(report), *extra])
    template = env.get_template("pr_comment.md.j2")
    warning = HOLDOUT_WARNING if holdout_read(report) else ""
    unstable = unstable_warning(report)
    warnings = [w for w in (unstable, warning) if w]
    ctx = {
        "holdout_warning": warning,
        "unstable_warning": unstable,
        "spread_cells": spread_cells(report),
        "repeats_line": repeats_line(report),
        "charts": comment_charts(report),
        "report": report,
        "marker": marker(report.name),
        "gate_cells": gate_cells(report),
        "failed_gates": [g for g in report.gates if not g.passed],
        "onnx": onnx_line(report),
        "contract": contract_rows(report),
        "baseline_text": _model_text(report.baseline),
        "candidate_text": _model_text(report.candidate),
        "footer": footer(report),
        "truncated": False,
        "max_changes": 50,
    }
    body = _with_warnings(template.render(**ctx), warnings)
    if len(body) <= limit:
        return body
    # First drop the details block and most of the change list, then cut hard.
    body = _with_warnings(template.render(**(ctx | {"truncated": True, "max_changes": 10})), warnings)
    if len(body) + len(TRUNCATION_NOTE) <= limit:
        return body.rstrip("\n") + TRUNCATION_NOTE
    keep = limit - len(TRUNCATION_NOTE)
    return body[:keep] + TRUNCATION_NOTE


def _with_warnings(body: str, warnings: list[str]) -> str:
    """The warnings stay in the comment even when a custom template leaves them out:
    right after the first line (the marker), else first."""
    missing = "\n\n".join(w for w in warnings if w not in body)
    if not missing:
        return body
    first, sep, rest = body.partition("\n")
    if first.startswith("<!--"):
        return f"{first}\n{missing}\n\n{rest}"
    return f"{missing}\n\n{body}"


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, default=str)


def print_terminal(report: Report, console: Any, comment_path: str | None = None) -> None:
    from rich.markup import escape
    from rich.table import Table

    ok = report.passed
    console.print(f"[bold {'green' if ok else 'red'}]{'PASS' if ok else 'FAIL'}[/] {escape(report.name)}: {escape(report.summary)}")
    if report.reproducibility and not report.reproducibility.get("same", True):
        console.print(f"[bold yellow]warning[/] {escape(unstable_warning(report).removeprefix('> ⚠️ ').replace('**', ''))}", highlight=False)
    if holdout_read(report):
        console.print("[bold yellow]warning[/] the training code read the holdout ({holdout} in training.command): the scores may be optimistic", highlight=False)
    table = Table(show_edge=False, header_style="bold")
    table.add_column("metric")  # rich's default: left
    for col in ("base", "candidate", "delta"):
        table.add_column(col, justify="right")
    table.add_column("gate")
    cells = gate_cells(report)
    spread = spread_cells(report)
    for row in report.metrics:
        delta = _delta(row).replace(" 🟢", "").replace(" 🔴", "")
        color = {"better": "green", "worse": "red"}.get(row.change)
        table.add_row(f"{row.name} {'↑' if row.higher_is_better else '↓'}", _num(row.base), _num(row.candidate) + spread[row.name], f"[{color}]{delta}[/]" if color else delta, cells[row.name])
    console.print(table)
    if report.repeats:
        console.print(escape(repeats_line(report).replace("`", "")), highlight=False)
    for g in report.gates:
        if not g.passed:
            console.print(f"  [red]gate failed[/] {g.metric}.{g.rule}: {escape(g.message)}")
    console.print(f"baseline: {escape(_model_text(report.baseline))}", highlight=False)
    console.print(f"candidate: {escape(_model_text(report.candidate))}", highlight=False)
    for note in [*report.notes, *run_notes(report)]:
        console.print(f"note: {escape(note)}", highlight=False)
    if comment_path:
        console.print(f"comment: {escape(comment_path)}", highlight=False)
