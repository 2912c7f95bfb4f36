"""The PR comment: pinned in full (golden files), bounded by GitHub's limit, overridable."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import os
from pathlib import Path


from mlgitops.config.loader import Gate
from mlgitops.train.gates import check_gates
from mlgitops.report.render import STAMP_ROOM, marker, render_comment, render_json
from mlgitops.deploy.export_step import ExportOutcome, describe, export_gate
from mlgitops.report.model import Change, ModelInfo, Report, metric_rows, summarize

GOLDEN = Path(__file__).parent / "golden"
GITHUB_COMMENT_MAX = 65536  # GitHub: "body is too long (maximum is 65536 characters)"; never the product's constant
UPDATE = os.environ.get("MLOPS_UPDATE_GOLDEN") == "1"


def make_report(candidate_f1: float = 0.9667, labels: int = 2) -> Report:
    names = ["accuracy", "f1", "roc_auc", "log_loss"]
    cand = {"accuracy": 0.958, "f1": candidate_f1, "roc_auc": 0.9954, "log_loss": 0.0996}
    base = {"accuracy": 0.951, "f1": 0.9613, "roc_auc": 0.9906, "log_loss": 0.1544}
    gates = check_gates({"accuracy": Gate(min=0.9), "f1": Gate(min=0.9, max_drop=0.02), "log_loss": Gate(max_drop_pct=25)}, cand, base)
    parity = {"rows": 143, "label_agreement": 1.0, "max_abs_diff": 3.2e-07, "min_label_agreement": 0.999, "max_abs_diff_allowed": 0.001, "passed": True, "worst_row": 12}
    exported = ExportOutcome("ok", describe(parity, "classification"), "91afcd480c9d" + "2" * 52, 77_926, "sklearn.ensemble.RandomForestClassifier", parity)
    gates.append(export_gate(exported))
    verdict, summary = summarize(gates)
    return Report(
        name="breast-cancer",
        task="classification",
        task_reason="inferred: target has 2 distinct whole-number values",
        verdict=verdict,
        summary=summary,
        event={"kind": "local", "head_ref": "feature", "head_sha": "f9192d7aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "base_ref": "main", "base_sha": "0815c86bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "pr_number": 7},
        metrics=metric_rows(names, cand, base, gates, {}),
        gates=gates,
        candidate=ModelInfo("candidate", "trained", "feature", "f9192d7", key="c" * 64, train_seconds=0.31, trained_with="sklearn.ensemble.RandomForestClassifier", data_sha256="75a1d74a59df" + "0" * 52, code_sha256="e3b0c44298fc" + "1" * 52, scored_on="the candidate's holdout"),
        baseline=ModelInfo("baseline", "cache", "main", "0815c86", key="b" * 64, train_seconds=0.2, trained_with="sklearn.ensemble.RandomForestClassifier", data_sha256="75a1d74a59df" + "0" * 52, code_sha256="e3b0c44298fc" + "1" * 52, scored_on="the candidate's holdout", note="no model is deployed to staging yet (deploy/staging.yaml is not on `main`), so the baseline is what `main`'s own config, code and data produce"),
        config_changes=[Change("training.params.max_depth", 2, 6)],
        data={"source": "sklearn:breast_cancer", "sha256": "75a1d74a59df" + "0" * 52, "holdout_source": "a 25% split, seed 7", "train_rows": 426, "holdout_rows": 143, "features": 30, "target": "target"},
        confusion={"labels": list(range(labels)), "matrix": [[50 if i == j else 1 for j in range(labels)] for i in range(labels)]},
        notes=[],
        export=exported.to_dict(),
        timings={"total": 3.21},
        tool_version="0.1.0",
        generated_at="2026-11-27T00:00:00+00:00",
    )


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text()


def test_golden_passing_comment() -> None:
    check_golden("pr_comment_pass.md", render_comment(make_report()))


def test_golden_failing_comment() -> None:
    report = make_report(candidate_f1=0.93)
    assert report.verdict == "fail"
    body = render_comment(report)
    check_golden("pr_comment_fail.md", body)
    assert "- ❌ `f1.max_drop`: f1 worsened by 0.0313 (> 0.02 allowed)" in body


def test_comment_starts_with_marker() -> None:
    assert render_comment(make_report()).startswith(marker("breast-cancer") + "\n")


def test_huge_comment_is_truncated_with_a_visible_note() -> None:
    report = make_report(labels=400)  # a 400x400 confusion matrix: far past the limit
    body = render_comment(report)
    assert len(body) + STAMP_ROOM <= GITHUB_COMMENT_MAX  # room for the forge's sha stamp
    assert body.startswith(marker("breast-cancer"))
    assert "truncated to fit GitHub's 65,536-character limit" in body
    assert "| f1 ↑ |" in body  # the metric table survives; the details block goes first
    assert "<details>" not in body


def test_hard_cut_when_even_the_summary_is_too_long() -> None:
    report = make_report()
    report.config_changes = [Change(f"training.params.p{i}", "x" * 3500, "y" * 3500) for i in range(40)]  # the ten changes kept: 70,000 characters
    body = render_comment(report)
    assert GITHUB_COMMENT_MAX - 200 < len(body) <= GITHUB_COMMENT_MAX - STAMP_ROOM
    assert body.endswith("Run `mlops run --json` for the full report.\n")


def test_repo_can_override_the_template(tmp_path: Path) -> None:
    (tmp_path / "pr_comment.md.j2").write_text("{{ marker }}\n{{ report.verdict | upper }}: {{ report.summary }}\n")
    body = render_comment(make_report(), template_dir=tmp_path)
    assert body == "<!-- mlgitops:pr-report name=breast-cancer -->\nPASS: All 5 gate checks passed\n"


def test_json_round_trips() -> None:
    report = make_report()
    raw = json.loads(render_json(report))
    assert raw["verdict"] == "pass" and raw["metrics"][1]["name"] == "f1"
    assert Report.from_dict(raw) == report


# Near misses in the comment (the mutation run of bench/MUTATION.md): the number and
# delta formats, the warnings a custom template leaves out, the exact truncation
# boundaries, the templates a run names.
def test_numbers_and_deltas_as_the_comment_shows_them() -> None:
    from mlgitops.report.model import MetricRow
    from mlgitops.report.render import _cell, _delta, _num, _short, _show

    assert [_num(v) for v in (None, 0, 0.0, 1, 0.001, 0.00099, 99_999.5, 100_000, -100_000, -0.0005)] == [
        "n/a", "0.0000", "0.0000", "1.0000", "0.0010", "9.900e-04", "99999.5000", "1.000e+05", "-1.000e+05", "-5.000e-04"]
    row = MetricRow("f1", higher_is_better=True, base=0.9, candidate=0.9, delta=0.0, delta_pct=0.0, change="same", gate="")
    assert _delta(row) == "0"
    assert _delta(replace(row, delta=None, change="n/a")) == ""
    assert _delta(replace(row, delta=0.0, delta_pct=None, change="worse")) == "−0.0000 🔴"  # a zero that is not "same" (e.g. a tolerance): never a "+"
    assert _delta(replace(row, delta=0.0125, delta_pct=1.4, change="better")) == "+0.0125 (+1.4%) 🟢"
    assert _show(None) == "_(unset)_" and _show("a|b") == "`a|b`" and _show(2) == "`2`" and _show([1, "x"]) == '`[1, "x"]`'
    assert _cell("a|b|c") == "a\\|b\\|c" and _short(None) == "" and _short("0123456789abcdef") == "0123456789ab"


def test_the_warnings_stay_when_a_custom_template_leaves_them_out(tmp_path: Path) -> None:
    from mlgitops.report.render import HOLDOUT_WARNING

    report = make_report()
    report.candidate = replace(report.candidate, trained_with="python train.py {train} {holdout} {model}")
    (tmp_path / "pr_comment.md.j2").write_text("{{ marker }}\nverdict: {{ report.verdict }}\n")
    assert render_comment(report, template_dir=tmp_path) == f"{marker('breast-cancer')}\n{HOLDOUT_WARNING}\n\nverdict: pass\n"
    (tmp_path / "pr_comment.md.j2").write_text("verdict: {{ report.verdict }}\n")  # no marker line: the warning goes first
    assert render_comment(report, template_dir=tmp_path) == f"{HOLDOUT_WARNING}\n\nverdict: pass\n"
    (tmp_path / "pr_comment.md.j2").write_text("{{ marker }}\n{{ holdout_warning }}\nverdict\n")  # the template shows it: once
    assert render_comment(report, template_dir=tmp_path) == f"{marker('breast-cancer')}\n{HOLDOUT_WARNING}\nverdict\n"
    assert HOLDOUT_WARNING not in render_comment(make_report(), template_dir=tmp_path)


def test_a_run_s_templates_and_notes_are_the_ones_used(tmp_path: Path) -> None:
    import jinja2

    from mlgitops.report.render import Templates

    (tmp_path / "pr_comment.md.j2").write_text("{{ marker }}\nfrom the folder\n{% for n in report.notes %}- {{ n }}\n{% endfor %}")
    from_folder = Templates("mlops.yaml:9:3", template_dir=tmp_path, notes=["a note of the run"])
    assert render_comment(make_report(), templates=from_folder) == f"{marker('breast-cancer')}\nfrom the folder\n- a note of the run\n"
    from_git = Templates("mlops.yaml:9:3", loader=jinja2.DictLoader({"pr_comment.md.j2": "{{ marker }}\nfrom the base ref\n"}))
    assert render_comment(make_report(), template_dir=tmp_path, templates=from_git) == f"{marker('breast-cancer')}\nfrom the base ref\n"


def test_the_truncation_boundaries_are_exact() -> None:
    from mlgitops.report.render import TRUNCATION_NOTE

    report = make_report()
    report.config_changes = [Change(f"training.params.p{i:02d}", "x" * 300, "y" * 300) for i in range(60)]
    full_body = render_comment(report, limit=10**9)
    assert "- … and 10 more config change(s)" in full_body and "`training.params.p49`" in full_body and "`training.params.p50`" not in full_body  # 50 listed
    assert render_comment(report, limit=len(full_body)) == full_body  # exactly at the limit: whole
    short = render_comment(report, limit=len(full_body) - 1)
    assert short.endswith(TRUNCATION_NOTE) and "<details>" not in short
    assert "`training.params.p09`" in short and "`training.params.p10`" not in short and "- … and 50 more config change(s)" in short  # 10 listed
    assert not short.endswith("\n\n\n" + TRUNCATION_NOTE.lstrip("\n")) and "\n\n\n> ⚠️" not in short
    assert render_comment(report, limit=len(short)) == short  # the summary and the note fit exactly
    cut = render_comment(report, limit=len(short) - 1)
    assert len(cut) == len(short) - 1 and cut.endswith(TRUNCATION_NOTE) and cut != short
    assert cut[: -len(TRUNCATION_NOTE)] == short[: len(cut) - len(TRUNCATION_NOTE)]  # a hard cut of the same summary


def test_the_footer_gate_cells_and_json_as_shown() -> None:
    from mlgitops.report.render import footer, gate_cells
    from mlgitops.train.gates import GateResult

    report = make_report()
    assert footer(report) == "mlgitops 0.1.0 · run time 3.2 s"
    report.reused = True
    report.timings = {}
    assert footer(report) == "mlgitops 0.1.0 · inputs unchanged since the last run: result reused without retraining"
    report.gates = [GateResult("f1", "max_drop", 0.02, None, True, True, "no baseline: relative gate skipped", 0.01), GateResult("accuracy", "min", 0.9, 0.95, True, False, "accuracy 0.9500 >= 0.9"), GateResult("log_loss", "max_drop_pct", 25, 30.0, False, False, "x")]
    assert gate_cells(report) == {"accuracy": "✅ ≥ 0.9", "f1": "⏭️ drop ≤ 0.02 (+0.01 tolerance)", "roc_auc": "", "log_loss": "❌ drop ≤ 25%"}
    text = render_json(make_report())
    assert text.startswith('{\n  "name": "breast-cancer",\n  "task": "classification",\n') and text == json.dumps(json.loads(text), indent=2)


def test_model_texts_unstable_warning_and_template_guards(tmp_path: Path) -> None:
    import jinja2

    from mlgitops.report.render import HOLDOUT_WARNING, _model_text, environment, unstable_warning

    none = ModelInfo("baseline", "none", None, None)
    assert _model_text(none) == "none" and _model_text(replace(none, note="no base ref")) == "no base ref"
    deployed = ModelInfo("baseline", "manifest", "main", "abc", version=3)
    assert _model_text(deployed) == "the deployed model version 3" and _model_text(replace(deployed, version=None)) == "the deployed model"
    cand = ModelInfo("candidate", "trained", "f", "s", train_seconds=1.25, note="a candidate's note is not shown")
    assert _model_text(cand) == "trained in this run; fit in 1.2 s"
    assert _model_text(replace(cand, role="baseline", source="cache")) == "a candidate's note is not shown; reused from the cache (same data, params and code)"

    report = make_report()
    report.reproducibility = {"same": False, "seed": 0, "against": "the cached run", "moved": [{"metric": "f1", "before": 0.9, "now": 0.91}]}
    warning = unstable_warning(report)
    assert warning.startswith("> ⚠️ **This verdict is unstable: training is not reproducible.** Training these same inputs (data, config, code, seed 0) again gave other metrics than on the cached run (f1 0.9000 → 0.9100), so a rerun can flip the gate.")
    assert unstable_warning(replace(report, reproducibility={"same": True})) == "" and unstable_warning(replace(report, reproducibility=None)) == ""
    report.candidate = replace(report.candidate, trained_with="python train.py {holdout}")
    (tmp_path / "pr_comment.md.j2").write_text("{{ marker }}\nverdict\n")
    assert render_comment(report, template_dir=tmp_path) == f"{marker('breast-cancer')}\n{warning}\n\n{HOLDOUT_WARNING}\n\nverdict\n"  # both, in this order
    assert render_comment(report).count("This verdict is unstable") == 1

    for text in ("{{ nope }}", "{{ lipsum() }}", "{{ cycler(1, 2).next() }}", "{% set j = joiner() %}{{ j() }}"):
        (tmp_path / "pr_comment.md.j2").write_text(text)
        with pytest.raises(jinja2.UndefinedError):
            render_comment(make_report(), template_dir=tmp_path)
    with pytest.raises(jinja2.TemplateNotFound):
        environment().get_template("no_such_template.md.j2")


def test_every_limit_from_the_summary_to_the_full_comment_gives_the_summary() -> None:
    report = make_report()
    report.config_changes = [Change(f"training.params.p{i:02d}", "x" * 300, "y" * 300) for i in range(60)]
    full_body = render_comment(report, limit=10**9)
    short = render_comment(report, limit=len(full_body) - 1)
    assert [render_comment(report, limit=len(short) + extra) == short for extra in range(4)] == [True] * 4


def test_the_summary_keeps_its_last_characters_before_the_truncation_note(tmp_path: Path) -> None:
    """Only the blank lines at the end of the cut-down comment go before the note."""
    from mlgitops.report.render import TRUNCATION_NOTE

    for last in ("summary X ", "summary X"):
        (tmp_path / "pr_comment.md.j2").write_text("{{ marker }}\n" + last + "\n\n{% if not truncated %}" + "d" * 300 + "\n{% endif %}")
        full = render_comment(make_report(), template_dir=tmp_path, limit=10**6)
        assert full == f"{marker('breast-cancer')}\n{last}\n\n{'d' * 300}\n"
        assert render_comment(make_report(), template_dir=tmp_path, limit=len(full) - 1) == f"{marker('breast-cancer')}\n{last}{TRUNCATION_NOTE}"


def test_the_built_in_template_is_utf8_whatever_the_locale() -> None:
    """A runner whose locale is not UTF-8 (here C: ASCII) renders the same comment."""
    import locale

    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        body = render_comment(make_report())
    finally:
        locale.setlocale(locale.LC_CTYPE, before)
    check_golden("pr_comment_pass.md", body)
