"""The comment's sections one at a time (ONNX line, repeats, the unstable warning, the
data contract, run notes), the terminal table `mlops run` prints, and where a run's
templates come from (the base commit, read with git): exact text, each branch and each
near miss. Fast: no training, no Prefect (bench/MUTATION.md's render run uses this file)."""

from __future__ import annotations

import io
import json
import re
import textwrap
from dataclasses import replace
from importlib.resources import files
from pathlib import Path

import jinja2
import pytest
from rich.console import Console
from rich.theme import Theme

from mlgitops.config.loader import parse_config
from mlgitops.deploy.export_step import ExportOutcome
from mlgitops.errors import ConfigError
from mlgitops.report import render
from mlgitops.report.model import Change, ModelInfo, Report
from mlgitops.report.render import Templates, marker, render_comment, run_templates
from tests.helpers import GitRepo
from tests.test_render import make_report

SHA = "91afcd480c9d" + "2" * 52  # make_report's ONNX sha256: the 13th digit differs from the 12th


# -- the ONNX line ---------------------------------------------------------------------
def test_the_onnx_line_for_each_export_outcome() -> None:
    report = make_report()
    parity = "labels agree on 100.00% of 143 holdout rows (min 99.90%), max |Δ probability| 3.2e-07 (max 0.001)"
    assert report.export is not None and report.export["message"] == parity

    def line(**export: object) -> str:
        return render.onnx_line(replace(report, export=export or None))

    ok = {"status": "ok", "message": parity, "sha256": SHA, "bytes": 77_926}
    assert line(**ok) == f"✅ `model.onnx` sha256 `91afcd480c9d` (76.1 kB): ONNX Runtime vs the fitted model: {parity}"
    assert line(**ok | {"bytes": 1024}) == f"✅ `model.onnx` sha256 `91afcd480c9d` (1.0 kB): ONNX Runtime vs the fitted model: {parity}"
    # A hand-made report without the hash or the size: no empty `()` or ``.
    assert line(**ok | {"bytes": None}) == f"✅ `model.onnx` sha256 `91afcd480c9d`: ONNX Runtime vs the fitted model: {parity}"
    assert line(**ok | {"sha256": None}) == f"✅ `model.onnx` (76.1 kB): ONNX Runtime vs the fitted model: {parity}"
    assert line(**ok | {"sha256": "", "bytes": 0}) == f"✅ `model.onnx`: ONNX Runtime vs the fitted model: {parity}"
    # Parity failed: a failure unless export.on_failure is warn (enforced: false).
    bad = ok | {"status": "parity_failed", "message": "labels agree on 97.00% of 143 holdout rows (min 99.90%)"}
    for enforced, icon in ((None, "❌"), (True, "❌"), (False, "⚠️")):
        given = bad if enforced is None else bad | {"enforced": enforced}
        assert line(**given) == f"{icon} `model.onnx` sha256 `91afcd480c9d` (76.1 kB): ONNX Runtime vs the fitted model: labels agree on 97.00% of 143 holdout rows (min 99.90%)"
    # No ONNX at all: the message alone.
    failed = {"status": "failed", "message": "skl2onnx cannot convert this estimator"}
    assert line(**failed) == "❌ skl2onnx cannot convert this estimator"
    assert line(**failed | {"enforced": True}) == "❌ skl2onnx cannot convert this estimator"
    assert line(**failed | {"enforced": False}) == "⚠️ skl2onnx cannot convert this estimator"
    # Off, or never tried: no line, and no **ONNX export** section in the comment.
    assert line(status="disabled", message="ONNX export is off (export.onnx: false)", enforced=False) == ""
    assert line() == ""
    body = render_comment(replace(report, export=ExportOutcome("disabled", "ONNX export is off (export.onnx: false)", enforced=False).to_dict()))
    assert "ONNX" not in body and "**What changed**" in body
    assert f"\n**ONNX export**: ✅ `model.onnx` sha256 `91afcd480c9d` (76.1 kB): ONNX Runtime vs the fitted model: {parity}\n\n**What changed**\n" in render_comment(report)


# -- training.repeats: the spread cells and the line under the table ------------------
REPEATS = {
    "count": 4,
    "seeds": [7, 8, 9, 10],
    "metrics": {
        "accuracy": {"mean": 0.958, "min": 0.95, "max": 0.961, "std": 0.0042, "values": [0.95, 0.96, 0.961, 0.961]},
        "f1": {"mean": 0.9667, "min": 0.9601, "max": 0.97, "std": 0.00441, "values": [0.9601, 0.97, 0.967, 0.9697]},
        "roc_auc": None,  # a metric one seed could not compute: no spread, no std
    },
}


def test_repeats_spread_cells_and_line() -> None:
    report = replace(make_report(), repeats=REPEATS)
    assert render.spread_cells(report) == {"accuracy": " (0.9500–0.9610)", "f1": " (0.9601–0.9700)", "roc_auc": "", "log_loss": ""}
    line = "Candidate metrics are the mean of 4 trainings with seeds 7–10 (`training.repeats`); the gates use the mean, (min–max) is the range over the seeds; standard deviation: accuracy ±0.0042, f1 ±0.0044."
    assert render.repeats_line(report) == line
    body = render_comment(report)
    assert "| accuracy ↑ | 0.9510 | 0.9580 (0.9500–0.9610) | +0.0070 (+0.7%) 🟢 | ✅ ≥ 0.9 |\n" in body
    assert "| roc_auc ↑ | 0.9906 | 0.9954 | +0.0048 (+0.5%) 🟢 |  |\n" in body
    assert f"| log_loss ↓ | 0.1544 | 0.0996 | −0.0548 (−35.5%) 🟢 | ✅ drop ≤ 25% |\n\n{line}\n\n**ONNX export**" in body
    # One training, or a record with no metrics: nothing.
    for repeats in (None, {}, {"count": 2, "seeds": [7, 8], "metrics": {}}):
        assert render.spread_cells(replace(report, repeats=repeats)) == {"accuracy": "", "f1": "", "roc_auc": "", "log_loss": ""}
    assert render.repeats_line(replace(report, repeats=None)) == "" and render.repeats_line(replace(report, repeats={})) == ""
    assert render_comment(replace(report, repeats=None)) == render_comment(make_report())


# -- the unstable warning ---------------------------------------------------------------
UNSTABLE = {
    "same": False,
    "seed": 7,
    "against": "2026-11-27T00:00:00+00:00",
    "moved": [{"metric": "f1", "before": 0.9613, "now": 0.9667}, {"metric": "log_loss", "before": 0.1544, "now": 0.0996}],
}
FIX = (
    "so a rerun can flip the gate. To fix it: set `random_state` in `training.params`, seed your training script from the "
    '`MLOPS_SEED` environment variable (e.g. `RandomForestClassifier(random_state=int(os.environ["MLOPS_SEED"]))`), '
    "or set `training.repeats` to gate on the mean of several seeds."
)


def test_the_unstable_warning_in_full() -> None:
    report = replace(make_report(), reproducibility=UNSTABLE)
    assert render.unstable_warning(report) == (
        "> ⚠️ **This verdict is unstable: training is not reproducible.** Training these same inputs (data, config, code, seed 7) "
        "again gave other metrics than on 2026-11-27T00:00:00+00:00 (f1 0.9613 → 0.9667, log_loss 0.1544 → 0.0996), " + FIX
    )
    unknown_when = replace(report, reproducibility=UNSTABLE | {"against": None, "seed": 0})
    assert render.unstable_warning(unknown_when) == (
        "> ⚠️ **This verdict is unstable: training is not reproducible.** Training these same inputs (data, config, code, seed 0) "
        "again gave other metrics than (f1 0.9613 → 0.9667, log_loss 0.1544 → 0.0996), " + FIX
    )
    # The same metrics, no comparison, or a record without a verdict: no warning.
    for repro in ({"same": True, "seed": 7, "against": None, "moved": []}, None, {}, {"seed": 7, "moved": []}):
        assert render.unstable_warning(replace(report, reproducibility=repro)) == ""
    body = render_comment(report)
    assert body.startswith(f"{marker('breast-cancer')}\n### ✅ mlops gate passed: `breast-cancer`\n\n{render.unstable_warning(report)}\n\nAll 5 gate checks passed.")


# -- the data contract ------------------------------------------------------------------
def check(column: str, kind: str, expected: str, found: str, passed: bool) -> dict[str, object]:
    return {"column": column, "check": kind, "expected": expected, "found": found, "violations": 0 if passed else 2, "passed": passed}


def test_contract_rows_put_broken_checks_first() -> None:
    rows = check("(rows)", "rows", "100 to 100000 rows", "400 rows", True)
    age_ok, plan_bad = check("age", "missing", "no missing values", "0 missing", True), check("plan", "missing", "no missing values", "2 missing (0.5%)", False)
    city_bad, city_ok = check("city", "missing", "no missing values", "9 missing (2.2%)", False), check("city", "type", "text", "text", True)
    report = replace(make_report(), contract=[rows, plan_bad, age_ok, city_bad, city_ok])
    assert render.contract_rows(report) == {"checks": [plan_bad, city_bad, rows, age_ok, city_ok], "broken": 2, "total": 5}
    assert render.contract_rows(replace(report, contract=[])) == {"checks": [], "broken": 0, "total": 0}
    assert render.contract_rows(replace(report, contract=None)) is None
    assert (
        "**Data contract**: ❌ 2 of 5 checks broken\n\n| column | check | expected | found | |\n|:--|:--|:--|:--|:--|\n"
        "| `plan` | missing | no missing values | 2 missing (0.5%) | ❌ |\n"
        "| `city` | missing | no missing values | 9 missing (2.2%) | ❌ |\n"
        "| `(rows)` | rows | 100 to 100000 rows | 400 rows | ✅ |\n"
        "| `age` | missing | no missing values | 0 missing | ✅ |\n"
        "| `city` | type | text | text | ✅ |\n\n**ONNX export**"
    ) in render_comment(report)
    kept = replace(report, contract=[rows, age_ok, city_ok])
    assert "\n**Data contract**: ✅ all 3 checks hold (2 column(s), row count)\n\n**ONNX export**" in render_comment(kept)
    assert "Data contract" not in render_comment(replace(report, contract=None))


# -- notes the bot adds whatever the template --------------------------------------------
AFTER_MERGE = "`training.env` changes take effect after merge: the training command of this run saw the base ref's list."


@pytest.mark.parametrize(
    ("keys", "noted"),
    [
        (["training.env"], True),
        (["training.env[2]"], True),  # an item of the list
        (["training.env[0][1]"], True),
        (["training.env.HOME"], True),
        (["training.params.max_depth", "training.env[0]", "training.environment"], True),
        (["training.envelope", "training.environment[0]", "training.params.env", "env"], False),
        ([], False),
    ],
)
def test_run_notes_for_settings_that_apply_after_merge(keys: list[str], noted: bool) -> None:
    report = replace(make_report(), config_changes=[Change(k, "a", "b") for k in keys])
    assert render.run_notes(report) == ([AFTER_MERGE] if noted else [])
    details = render_comment(report).split("<details>", 1)[1]
    assert (f"- {AFTER_MERGE}\n" in details) is noted


# -- the terminal table (`mlops run`) ---------------------------------------------------
def styled(line: str) -> list[tuple[str, str]]:
    """One line of terminal output as its styled stretches: (SGR code, text), blanks and
    unstyled text left out; "1;31" is bold red, "32" green, "1;33" bold yellow."""
    out, code = [], ""
    for piece in re.split(r"(\x1b\[[\d;]*m)", line):
        sgr = re.fullmatch(r"\x1b\[([\d;]*)m", piece)
        if sgr:
            code = "" if sgr.group(1) in ("", "0") else sgr.group(1)
        elif code and piece.strip():
            out.append((code, piece.strip()))
    return out


def terminal(report: Report, comment_path: str | None = None, **console: object) -> tuple[list[str], list[list[tuple[str, str]]]]:
    """What `print_terminal` writes to a 16-colour terminal 120 columns wide: the plain
    lines, and each line's styled stretches."""
    out = io.StringIO()
    args = {"file": out, "width": 120, "force_terminal": True, "color_system": "standard", "no_color": False, "legacy_windows": False} | console
    render.print_terminal(report, Console(**args), comment_path)  # type: ignore[arg-type]
    ansi = out.getvalue()
    assert ansi.endswith("\n")
    plain = [line.rstrip() for line in re.sub(r"\x1b\[[\d;]*m", "", ansi).splitlines()]  # rich pads to the cell
    return plain, [styled(line) for line in ansi.splitlines()]


def test_the_terminal_report_of_a_failing_run() -> None:
    report = make_report(candidate_f1=0.93)
    report.metrics[2] = replace(report.metrics[2], base=None, delta=None, delta_pct=None, change="n/a")
    report.metrics.append(replace(report.metrics[0], name="precision", base=0.95, candidate=0.95, delta=0.0, delta_pct=0.0, change="same", gate=""))
    report.reproducibility = UNSTABLE
    report.repeats = REPEATS
    report.candidate = replace(report.candidate, trained_with="python train.py {train} {holdout} {model}")
    report.notes = ["the [bold]data[/bold] is 3 days old"]  # printed as written, never as markup
    report.config_changes = [Change("training.env[0]", "A", "B")]
    lines, styles = terminal(report, "comment.md", highlight=False)  # as `mlops run` prints it (present.py)
    assert lines == [
        "FAIL breast-cancer: 1 of 5 gate checks failed: f1 worsened by 0.0313 (> 0.02 allowed)",
        "warning This verdict is unstable: training is not reproducible. Training these same inputs (data, config, code, seed 7)",
        "again gave other metrics than on 2026-11-27T00:00:00+00:00 (f1 0.9613 → 0.9667, log_loss 0.1544 → 0.0996), so a rerun",
        "can flip the gate. To fix it: set `random_state` in `training.params`, seed your training script from the `MLOPS_SEED`",
        'environment variable (e.g. `RandomForestClassifier(random_state=int(os.environ["MLOPS_SEED"]))`), or set',
        "`training.repeats` to gate on the mean of several seeds.",
        "warning the training code read the holdout ({holdout} in training.command): the scores may be optimistic",
        " metric      ┃   base ┃              candidate ┃            delta ┃ gate",
        "━━━━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━",
        " accuracy ↑  │ 0.9510 │ 0.9580 (0.9500–0.9610) │  +0.0070 (+0.7%) │ ✅ ≥ 0.9",
        " f1 ↑        │ 0.9613 │ 0.9300 (0.9601–0.9700) │  −0.0313 (−3.3%) │ ✅ ≥ 0.9, ❌ drop ≤ 0.02",
        " roc_auc ↑   │    n/a │                 0.9954 │                  │",
        " log_loss ↓  │ 0.1544 │                 0.0996 │ −0.0548 (−35.5%) │ ✅ drop ≤ 25%",
        " precision ↑ │ 0.9500 │                 0.9500 │                0 │",
        "Candidate metrics are the mean of 4 trainings with seeds 7–10 (training.repeats); the gates use the mean, (min–max) is",
        "the range over the seeds; standard deviation: accuracy ±0.0042, f1 ±0.0044.",
        "  gate failed f1.max_drop: f1 worsened by 0.0313 (> 0.02 allowed)",
        "baseline: no model is deployed to staging yet (deploy/staging.yaml is not on `main`), so the baseline is what `main`'s",
        "own config, code and data produce; reused from the cache (same data, params and code); with",
        "`sklearn.ensemble.RandomForestClassifier`; scored on the candidate's holdout",
        "candidate: trained in this run; fit in 0.3 s; with `python train.py {train} {holdout} {model}`; scored on the",
        "candidate's holdout",
        "note: the [bold]data[/bold] is 3 days old",
        f"note: {AFTER_MERGE}",
        "comment: comment.md",
    ]
    bold = [("1", "metric"), ("1", "base"), ("1", "candidate"), ("1", "delta"), ("1", "gate")]
    assert styles == [
        [("1;31", "FAIL")],
        [("1;33", "warning")],
        [], [], [], [],
        [("1;33", "warning")],
        bold,
        [],
        [("32", "+0.0070 (+0.7%)")],
        [("31", "−0.0313 (−3.3%)")],
        [],
        [("32", "−0.0548 (−35.5%)")],
        [],  # "same" and "n/a": no colour
        [], [],
        [("31", "gate failed")],
        [], [], [], [], [], [], [], [],
    ]  # fmt: skip


def test_the_terminal_report_of_a_passing_run_on_a_highlighting_console() -> None:
    """A console that highlights numbers and quotes (rich's default) leaves the text
    lines alone, and its theme does not restyle the header."""
    report = make_report()
    report.reproducibility = {"seed": 7, "moved": []}  # no verdict recorded: no warning
    report.notes = ["1 note with 'quotes' and 3.5 numbers"]
    lines, styles = terminal(report, ".mlops/comments/pr-7.md", theme=Theme({"table.header": "underline"}))
    assert lines == [
        "PASS breast-cancer: All 5 gate checks passed",
        " metric     ┃   base ┃ candidate ┃            delta ┃ gate",
        "━━━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━",
        " accuracy ↑ │ 0.9510 │    0.9580 │  +0.0070 (+0.7%) │ ✅ ≥ 0.9",
        " f1 ↑       │ 0.9613 │    0.9667 │  +0.0054 (+0.6%) │ ✅ ≥ 0.9, ✅ drop ≤ 0.02",
        " roc_auc ↑  │ 0.9906 │    0.9954 │  +0.0048 (+0.5%) │",
        " log_loss ↓ │ 0.1544 │    0.0996 │ −0.0548 (−35.5%) │ ✅ drop ≤ 25%",
        "baseline: no model is deployed to staging yet (deploy/staging.yaml is not on `main`), so the baseline is what `main`'s",
        "own config, code and data produce; reused from the cache (same data, params and code); with",
        "`sklearn.ensemble.RandomForestClassifier`; scored on the candidate's holdout",
        "candidate: trained in this run; fit in 0.3 s; with `sklearn.ensemble.RandomForestClassifier`; scored on the candidate's",
        "holdout",
        "note: 1 note with 'quotes' and 3.5 numbers",
        "comment: .mlops/comments/pr-7.md",
    ]
    bold = [("1", "metric"), ("1", "base"), ("1", "candidate"), ("1", "delta"), ("1", "gate")]
    green = [[("32", d)] for d in ("+0.0070 (+0.7%)", "+0.0054 (+0.6%)", "+0.0048 (+0.5%)", "−0.0548 (−35.5%)")]
    assert styles == [[("1;32", "PASS"), ("1;36", "5")], bold, [], *green, [], [], [], [], [], [], []]
    # The unstable warning is not highlighted either; an empty comment path is no line.
    report.reproducibility = UNSTABLE
    lines, styles = terminal(report, "")
    assert lines[1].startswith("warning This verdict is unstable") and styles[1:7] == [[("1;33", "warning")], [], [], [], [], [("1", "metric"), ("1", "base"), ("1", "candidate"), ("1", "delta"), ("1", "gate")]]
    assert lines[-1] == "note: 1 note with 'quotes' and 3.5 numbers"
    report.repeats = REPEATS
    lines, styles = terminal(report)
    at = lines.index("Candidate metrics are the mean of 4 trainings with seeds 7–10 (training.repeats); the gates use the mean, (min–max) is")
    assert styles[at : at + 2] == [[], []]
    report.candidate = replace(report.candidate, trained_with="python train.py {holdout} 2")
    lines, styles = terminal(report)
    assert lines[6] == "warning the training code read the holdout ({holdout} in training.command): the scores may be optimistic" and styles[6] == [("1;33", "warning")]


# -- JSON -------------------------------------------------------------------------------
def test_json_writes_what_it_cannot_hold_as_text() -> None:
    report = make_report()
    report.baseline = replace(report.baseline, version=Path("registry/v3"))  # a registry's version object
    assert json.loads(render.render_json(report))["baseline"]["version"] == "registry/v3"


# -- where the templates come from ------------------------------------------------------
CONFIG = """\
name: churn
data: {path: data.csv, target: y}
training: {estimator: sklearn.linear_model.LogisticRegression}
report:
  charts: false
  templates: tpl
"""
PLAIN = CONFIG.replace("  templates: tpl\n", "")  # report: at 5:3, without templates
BASE_NOTE = "Custom templates come from the base ref: this comment uses the base ref's templates; template changes made on this branch apply after merge."
BUILTIN_NOTE = "Custom templates come from the base ref: this comment uses the built-in templates; template changes made on this branch apply after merge."


def config(root: Path, text: str, display: str = "mlops.yaml", rel: str = "mlops.yaml"):  # type: ignore[no-untyped-def]
    return parse_config(textwrap.dedent(text), root / rel, display)


def test_run_templates_without_a_base_commit_use_the_working_tree(tmp_path: Path) -> None:
    assert run_templates(config(tmp_path, PLAIN), None, None, tmp_path, "mlops.yaml") == Templates("mlops.yaml:5:3")
    with pytest.raises(ConfigError) as err:
        run_templates(config(tmp_path, CONFIG), None, None, tmp_path, "mlops.yaml")
    assert err.value.message == "mlops.yaml:6:14: report.templates: folder 'tpl' not found" and err.value.exit_code == 2
    (tmp_path / "tpl").write_text("a file, not a folder")
    with pytest.raises(ConfigError) as err:
        run_templates(config(tmp_path, CONFIG), None, None, tmp_path, "mlops.yaml")
    assert err.value.message == "mlops.yaml:6:14: report.templates: folder 'tpl' not found"
    (tmp_path / "tpl").unlink()
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "pr_comment.md.j2").write_text("{{ marker }}\nfrom the working tree\n")
    chosen = run_templates(config(tmp_path, CONFIG), None, None, tmp_path, "mlops.yaml")
    assert chosen == Templates("mlops.yaml:6:14", template_dir=tmp_path / "tpl")
    assert render_comment(make_report(), templates=chosen) == f"{marker('breast-cancer')}\nfrom the working tree\n"


def base_repo(tmp_path: Path, files: dict[str, str | bytes]) -> tuple[GitRepo, str]:
    """A repository whose base commit holds ``files``; the working tree (the pull
    request) then changes every template and adds one."""
    repo = GitRepo(tmp_path)
    repo.gen(files)
    sha = repo.commit("base")
    changed: dict[str, str | bytes] = {rel: "{{ marker }}\nchanged on the branch\n" for rel in files if rel.endswith(".j2")}
    repo.gen(changed | {"tpl/added.md.j2": "added on the branch\n"})
    return repo, sha


def test_with_a_base_commit_the_base_ref_s_committed_templates_render(tmp_path: Path) -> None:
    repo, sha = base_repo(
        tmp_path,
        {
            "tpl/pr_comment.md.j2": "{{ marker }}\nbase says {{ report.verdict }}\n{% include 'part.md.j2' %}",
            "tpl/part.md.j2": "a part from the base\n",
            "pr_comment.md.j2": "{{ marker }}\nthe repository root's, not the folder's\n",
        },
    )
    base, branch = config(tmp_path, CONFIG, "mlops.yaml@main"), config(tmp_path, CONFIG)
    chosen = run_templates(branch, base, sha, tmp_path, "mlops.yaml")
    assert (chosen.where, chosen.template_dir, chosen.notes) == ("mlops.yaml@main:6:14", None, [BASE_NOTE])
    assert isinstance(chosen.loader, jinja2.BaseLoader)
    body = render_comment(make_report(), templates=chosen)
    assert body == f"{marker('breast-cancer')}\nbase says pass\na part from the base\n"  # the notes are the template's to show
    # The branch's own config without templates changes nothing: the base's still apply.
    chosen = run_templates(config(tmp_path, PLAIN), base, sha, tmp_path, "mlops.yaml")
    assert (chosen.where, chosen.notes) == ("mlops.yaml@main:6:14", [BASE_NOTE])
    assert render_comment(make_report(), templates=chosen) == body
    # A template the base folder lacks, even one the branch adds, is the built-in one.
    with pytest.raises(jinja2.TemplateNotFound, match="^added.md.j2$"):
        render.environment(overrides=chosen.loader).get_template("added.md.j2")
    env = render.environment(overrides=chosen.loader)
    assert env.loader is not None and env.loader.get_source(env, "promotion_pr.md.j2")[0] == (files("mlgitops.templates") / "promotion_pr.md.j2").read_text(encoding="utf-8")
    assert repo.git("status", "--short") == "M pr_comment.md.j2\n M tpl/part.md.j2\n M tpl/pr_comment.md.j2\n?? tpl/added.md.j2"


def test_a_base_template_falls_back_to_the_built_in_one(tmp_path: Path) -> None:
    _, sha = base_repo(tmp_path, {"tpl/other.md.j2": "{{ marker }}\nnot the comment\n"})
    chosen = run_templates(config(tmp_path, CONFIG), config(tmp_path, CONFIG, "mlops.yaml@main"), sha, tmp_path, "mlops.yaml")
    report = make_report()
    builtin = render_comment(report)
    assert render_comment(report, templates=chosen) == builtin.replace(" registers and pins.\n", f" registers and pins.\n- {BASE_NOTE}\n", 1) != builtin


def test_base_templates_are_read_relative_to_the_base_config(tmp_path: Path) -> None:
    _, sha = base_repo(
        tmp_path,
        {
            "models/shared/pr_comment.md.j2": "{{ marker }}\nshared by the models\n",
            "models/churn/pr_comment.md.j2": "{{ marker }}\nbeside the config\n",
            "shared/pr_comment.md.j2": "{{ marker }}\nat the root\n",
        },
    )
    text = CONFIG.replace("templates: tpl", "templates: ../shared")
    base = config(tmp_path, text, "models/churn/mlops.yaml@main", "models/churn/mlops.yaml")
    chosen = run_templates(config(tmp_path, text, rel="models/churn/mlops.yaml"), base, sha, tmp_path, "models/churn/mlops.yaml")
    assert chosen.where == "models/churn/mlops.yaml@main:6:14"
    assert render_comment(make_report(), templates=chosen) == f"{marker('breast-cancer')}\nshared by the models\n"
    here = CONFIG.replace("templates: tpl", "templates: .")
    chosen = run_templates(config(tmp_path, here, rel="models/churn/mlops.yaml"), config(tmp_path, here, rel="models/churn/mlops.yaml"), sha, tmp_path, "models/churn/mlops.yaml")
    assert render_comment(make_report(), templates=chosen) == f"{marker('breast-cancer')}\nbeside the config\n"


def test_base_templates_are_decoded_leniently(tmp_path: Path) -> None:
    _, sha = base_repo(tmp_path, {"tpl/pr_comment.md.j2": b"{{ marker }}\ncaf\xe9 \xe2\x9c\x85\n"})  # Latin-1 é, then UTF-8 ✅
    chosen = run_templates(config(tmp_path, CONFIG), config(tmp_path, CONFIG), sha, tmp_path, "mlops.yaml")
    assert render_comment(make_report(), templates=chosen) == f"{marker('breast-cancer')}\ncaf\ufffd ✅\n"


def test_a_template_name_outside_the_folder_is_refused(tmp_path: Path) -> None:
    """`../x` from a base template reads nothing else of the base commit, and no
    template, base, working tree or built-in, reads a file of the machine."""
    secret = tmp_path.parent / f"{tmp_path.name}-secret.txt"
    secret.write_text("SECRET on the runner\n")
    _, sha = base_repo(tmp_path, {"tpl/pr_comment.md.j2": "{{ marker }}\n{% include name %}", "tpl/part.md.j2": "a part from the base\n", "secret.md": "SECRET in the repository\n"})
    chosen = run_templates(config(tmp_path, CONFIG), config(tmp_path, CONFIG), sha, tmp_path, "mlops.yaml")
    env = render.environment(overrides=chosen.loader)
    builtin = Path(str(files("mlgitops.templates")))
    climb = "../" * len(builtin.parts) + str(secret).lstrip("/")  # from the built-in folder up to the secret
    assert (builtin / climb).resolve() == secret.resolve()
    for name in ("../secret.md", "tpl/../../secret.md", "./../secret.md", str(secret), climb):
        with pytest.raises(jinja2.TemplateNotFound):
            env.get_template("pr_comment.md.j2").render(marker="m", name=name)
        with pytest.raises(jinja2.TemplateNotFound):
            render.environment(tmp_path / "tpl").get_template(name)
    # A name inside the folder, with `.` or a leading `/`, is found there.
    for name in ("part.md.j2", "./part.md.j2", "/part.md.j2", "//part.md.j2"):
        assert env.get_template("pr_comment.md.j2").render(marker="m", name=name) == "m\na part from the base\n"
    loader = render.environment().loader
    assert loader is not None and loader.get_source(render.environment(), "/pr_comment.md.j2")[0] == (builtin / "pr_comment.md.j2").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("branch", "base", "where", "note"),
    [
        (CONFIG, None, "mlops.yaml:5:3", BUILTIN_NOTE),  # the base ref has no mlops.yaml
        (CONFIG, PLAIN, "mlops.yaml:5:3", BUILTIN_NOTE),  # a pull request that adds templates
        (PLAIN, PLAIN, "mlops.yaml:5:3", None),  # nobody uses templates
        (PLAIN, None, "mlops.yaml:5:3", None),
    ],
)
def test_without_base_templates_the_built_in_ones_render(tmp_path: Path, branch: str, base: str | None, where: str, note: str | None) -> None:
    _, sha = base_repo(tmp_path, {"tpl/pr_comment.md.j2": "{{ marker }}\nnot on the base config's list\n"})
    chosen = run_templates(config(tmp_path, branch), config(tmp_path, base, "mlops.yaml@main") if base else None, sha, tmp_path, "mlops.yaml")
    assert chosen == Templates(where, notes=[note] if note else [])
    report = make_report()
    body = render_comment(report, templates=chosen)
    assert body == (render_comment(report).replace(" registers and pins.\n", f" registers and pins.\n- {note}\n", 1) if note else render_comment(report))


def test_model_texts() -> None:
    deployed = ModelInfo("baseline", "manifest", "main", "abc", version="v7", scored_on="its own holdout (recorded)", trained_with="sklearn.svm.SVC")
    assert render._model_text(deployed) == "the deployed model version v7; with `sklearn.svm.SVC`; scored on its own holdout (recorded)"
    cached = ModelInfo("candidate", "cache", "f", "s", train_seconds=2.0)
    assert render._model_text(cached) == "reused from the cache (same data, params and code)"  # the fit time is the cached run's
