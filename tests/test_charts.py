"""Mermaid charts in the PR comment (issue 14, item 7): the numbers behind them (ROC on
a grid, the deployed versions from a manifest's git history), the exact Mermaid text
(golden), and Mermaid's own renderer drawing it in headless Chromium.

The render check runs Mermaid (npm package `mermaid`, pinned in tests/mermaid/package.json,
installed by .ci/run with `npm ci`) in Debian's Chromium: the same library in a real
browser, as GitHub draws a ```mermaid block. Which Mermaid version GitHub runs is
GitHub's, so two are checked: the current one and 10.6.0, the first with `xychart-beta`."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mlgitops.deploy.history import deployed_versions
from mlgitops.deploy.manifest import Pin, write_pin
from mlgitops.report.charts import axis_range, comment_charts, history_chart, number, quote, roc_chart
from mlgitops.report.render import render_comment
from mlgitops.train.curves import roc_curves, roc_on_grid
from tests.helpers import GitRepo, missing
from tests.helpers import chromium as chromium_binary
from tests.test_render import make_report

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("MLOPS_UPDATE_GOLDEN") == "1"
MERMAID = Path(__file__).parent / "mermaid" / "node_modules"
MERMAID_VERSIONS = {"current": "mermaid", "10.6.0": "mermaid-10.6.0"}  # tests/mermaid/package.json

HISTORY = {
    "env": "staging",
    "manifest": "deploy/staging.yaml",
    "ref": "main",
    "versions": [
        {"version": 3, "sha256": "3" * 64, "label": "v3", "metrics": {"accuracy": 0.93, "f1": 0.9402}, "registered_at": "2026-10-01T00:00:00+00:00"},  # before log_loss was recorded
        {"version": 4, "sha256": "4" * 64, "label": "v4", "metrics": {"accuracy": 0.944, "f1": 0.9551, "log_loss": 0.171}, "registered_at": "2026-10-15T00:00:00+00:00"},
        {"version": 5, "sha256": "5" * 64, "label": "v5", "metrics": {"accuracy": 0.951, "f1": 0.9613, "log_loss": 0.1544}, "registered_at": "2026-11-01T00:00:00+00:00"},
    ],
}
GRID = [round(i * 0.05, 4) for i in range(21)]
ROC = {
    "rows": 143,
    "positive": 1,
    "fpr": GRID,
    "lines": [
        {"side": "baseline", "auc": 0.9906, "tpr": [0.41, 0.7, 0.812, 0.9, 0.93, 0.95, 0.96, 0.97, 0.98, 0.985, 0.99, 0.99, 0.995, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]},
        {"side": "candidate", "auc": 0.99541, "tpr": [0.6333, 0.9, 0.95, 0.97, 0.98, 0.99, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]},
    ],
}


def chart_report() -> Any:
    """The golden report, its baseline the version deployed to staging, with charts."""
    report = make_report()
    report.baseline = replace(report.baseline, source="manifest", version=5, note="deployed in staging (pinned in deploy/staging.yaml on `main`)")
    report.charts = {"history": HISTORY, "roc": ROC}
    return report


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text()


def mermaid_blocks(body: str) -> list[str]:
    return re.findall(r"^```mermaid\n(.*?)\n```$", body, re.S | re.M)


# -- numbers and labels ----------------------------------------------------------------


def test_numbers_are_fixed_point_with_four_significant_digits() -> None:
    assert [number(v) for v in (0.96674, 0.9, 1.0, 0, 123456.7, 0.0000123456, -0.01234, 12.5)] == ["0.9667", "0.9", "1", "0", "123457", "0.00001235", "-0.01234", "12.5"]
    assert number(0.99541, 3) == "0.995"
    with pytest.raises(ValueError):
        number(float("nan"))


def test_labels_cannot_end_the_string_or_the_line() -> None:
    # Mermaid's quoted strings end at the next double quote (no escape), a leading
    # backtick starts a Markdown string, tags are sanitized away, a newline ends the statement.
    assert quote('v3 "hot" <b>fix</b> `x`\nnext') == '"v3 ”hot” ‹b›fix‹/b› \'x\' next"'
    assert quote("PR #7") == '"PR #7"'


def test_y_axis_is_round_and_within_what_the_metric_can_be() -> None:
    assert axis_range([0.9402, 0.9551, 0.9613, 0.9667], "f1") == ("0.934", "0.972")
    assert axis_range([0.99, 1.0], "accuracy") == ("0.988", "1")  # never above 1
    assert axis_range([0.02, 0.03], "log_loss") == ("0.018", "0.032")
    assert axis_range([0.001, 0.2], "log_loss") == ("0", "0.24")  # errors never below 0
    assert axis_range([0.5, 0.5], "r2") == ("0.475", "0.525")  # one value: a band around it
    assert axis_range([1520.0, 1710.0], "rmse") == ("1480", "1750")


# -- the numbers behind the charts ---------------------------------------------------


def test_roc_on_a_grid_follows_the_curve_through_its_steps() -> None:
    # Vertices (0,0) (0,.5) (.5,.5) (.5,1) (1,1): flat at 0.5 until fpr 0.5, then the step's top.
    curve = roc_on_grid([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], positive=1, points=5)
    assert curve == {"tpr": [0.5, 0.5, 1.0, 1.0, 1.0], "auc": 0.75}
    # Between vertices the curve is linear: (0,0) -> (1/3, 1) for scores that tie a negative.
    assert roc_on_grid(["n", "p", "n", "n"], [0.9, 0.9, 0.1, 0.2], positive="p", points=3) == {"tpr": [0.0, 1.0, 1.0], "auc": pytest.approx(5 / 6)}
    assert roc_on_grid([1, 1, 1], [0.2, 0.3, 0.4], positive=1) is None  # one class: no curve


def test_roc_curves_of_both_models_on_the_same_rows() -> None:
    import pandas as pd
    from sklearn.datasets import load_breast_cancer
    from sklearn.naive_bayes import GaussianNB
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    frame = X.assign(target=y)
    train, holdout = frame.iloc[:400], frame.iloc[400:]
    features = list(X.columns)
    strong = GaussianNB().fit(train[features], train["target"])
    weak = DecisionTreeClassifier(max_depth=1, random_state=0).fit(train[features[:3]], train["target"])
    out = roc_curves(holdout, "target", [0, 1], [("baseline", weak, features[:3]), ("candidate", strong, features), ("broken", object(), features)])
    assert out is not None and out["rows"] == len(holdout) and out["positive"] == 1 and out["fpr"] == GRID
    assert [line["side"] for line in out["lines"]] == ["baseline", "candidate"]  # no predict_proba: left out
    from sklearn.metrics import roc_auc_score

    for line, model, cols in ((out["lines"][0], weak, features[:3]), (out["lines"][1], strong, features)):
        assert len(line["tpr"]) == 21 and line["tpr"][-1] == 1.0
        assert line["tpr"] == sorted(line["tpr"])  # a ROC curve never falls
        assert line["auc"] == pytest.approx(roc_auc_score(holdout["target"], model.predict_proba(holdout[cols])[:, 1]))
    assert roc_curves(holdout, "target", [0, 1, 2], [("candidate", strong, features)]) is None  # multiclass: no chart
    assert roc_curves(pd.DataFrame(columns=frame.columns), "target", [0, 1], [("candidate", strong, features)]) is None


def _pin(repo: GitRepo, version: int | None, sha: str, metrics: dict[str, float], message: str) -> None:
    path = repo.path / "deploy" / "staging.yaml"
    old = path.read_text() if path.exists() else None
    repo.gen({"deploy/staging.yaml": write_pin(old, "staging", Pin("m", version, f"artifacts/{sha[:7]}.onnx", sha, "onnx", metrics, {"registered_at": f"v{version}"}), None)})
    repo.commit(message)


def test_deployed_versions_come_from_the_manifests_history(repo: GitRepo) -> None:
    repo.gen({"README.md": "x\n"}).commit("init")
    _pin(repo, 1, "1" * 64, {"f1": 0.9}, "deploy v1")
    _pin(repo, 2, "2" * 64, {"f1": 0.92, "log_loss": 0.2}, "deploy v2")
    _pin(repo, 1, "1" * 64, {"f1": 0.9}, "roll back to v1")
    repo.gen({"deploy/staging.yaml": "model: [not, a, pin]\n"}).commit("a broken hand edit")
    _pin(repo, 3, "3" * 64, {"f1": 0.95, "log_loss": 0.15, "note": "n/a"}, "deploy v3")  # type: ignore[dict-item]
    head = repo.git("rev-parse", "HEAD")
    got = deployed_versions(repo.path, head, "deploy/staging.yaml")
    assert got == [
        {"version": 1, "sha256": "1" * 64, "label": "v1", "metrics": {"f1": 0.9}, "registered_at": "v1"},
        {"version": 2, "sha256": "2" * 64, "label": "v2", "metrics": {"f1": 0.92, "log_loss": 0.2}, "registered_at": "v2"},
        {"version": 3, "sha256": "3" * 64, "label": "v3", "metrics": {"f1": 0.95, "log_loss": 0.15}, "registered_at": "v3"},
    ]
    assert [v["label"] for v in deployed_versions(repo.path, head, "deploy/staging.yaml", limit=2)] == ["v1", "v3"]  # the newest two pinned: v3, then v1 (rolled back to)
    assert deployed_versions(repo.path, repo.git("rev-parse", "HEAD~5"), "deploy/staging.yaml") == []  # before the first pin
    assert deployed_versions(repo.path, head, "deploy/production.yaml") == []


# -- the Mermaid text (golden) -------------------------------------------------------------


def test_golden_roc_chart() -> None:
    assert roc_chart(ROC) == "\n".join([
        '%%{init: {"xyChart": {"width": 600, "height": 440, "titleFontSize": 16}, "themeVariables": {"xyChart": {"plotColorPalette": "#f97316, #2563eb"}}}}%%',
        "xychart-beta",
        '    title "ROC: candidate (blue) AUC 0.995, baseline (orange) AUC 0.991"',
        '    x-axis "false positive rate (%)" ["0", "5", "10", "15", "20", "25", "30", "35", "40", "45", "50", "55", "60", "65", "70", "75", "80", "85", "90", "95", "100"]',
        '    y-axis "true positive rate (%)" 0 --> 100',
        "    line [41, 70, 81.2, 90, 93, 95, 96, 97, 98, 98.5, 99, 99, 99.5, 100, 100, 100, 100, 100, 100, 100, 100]",
        "    line [63.3, 90, 95, 97, 98, 99, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100]",
    ])


def test_golden_history_chart() -> None:
    assert history_chart("log_loss", ["v4", "v5", "PR #7"], [0.171, 0.1544, 0.0996]) == "\n".join([
        '%%{init: {"xyChart": {"width": 600, "height": 260, "titleFontSize": 16}, "themeVariables": {"xyChart": {"plotColorPalette": "#2563eb"}}}}%%',
        "xychart-beta",
        '    title "log_loss (lower is better)"',
        '    x-axis ["v4", "v5", "PR #7"]',
        '    y-axis "log_loss" 0.085 --> 0.186',
        "    line [0.171, 0.1544, 0.0996]",
    ])


def test_golden_comment_with_charts() -> None:
    body = render_comment(chart_report())
    check_golden("pr_comment_charts.md", body)
    blocks = mermaid_blocks(body)
    # The gated metrics (accuracy, f1, log_loss; not roc_auc), each over the versions that recorded it, then the ROC.
    assert ['    x-axis ["v3", "v4", "v5", "PR #7"]' in blocks[0], '    x-axis ["v3", "v4", "v5", "PR #7"]' in blocks[1], '    x-axis ["v4", "v5", "PR #7"]' in blocks[2]] == [True, True, True]
    assert [b.splitlines()[2] for b in blocks] == ['    title "accuracy (higher is better)"', '    title "f1 (higher is better)"', '    title "log_loss (lower is better)"', '    title "ROC: candidate (blue) AUC 0.995, baseline (orange) AUC 0.991"']
    assert body.index("**Gated metrics over the deployed versions**") > body.index("**What changed**") and body.index("```mermaid") < body.index("<details>")


def test_no_chart_data_no_charts_and_the_comment_is_as_before() -> None:
    assert comment_charts(make_report()) == []
    report = make_report()
    report.charts = {"history": None, "roc": None}  # a regression model with nothing deployed
    assert render_comment(report) == render_comment(make_report())
    assert "```mermaid" not in render_comment(make_report())


def test_only_the_candidate_has_a_curve_and_a_local_run_names_it_candidate() -> None:
    report = chart_report()
    report.event = dict(report.event, pr_number=None)
    report.charts = {"history": dict(HISTORY, versions=HISTORY["versions"][-1:]), "roc": dict(ROC, lines=ROC["lines"][1:])}
    sections = comment_charts(report)
    assert sections[0]["caption"].startswith("**Gated metrics over the deployed versions**: `accuracy`, `f1`, `log_loss` of the last version deployed to `staging` (v5, ")
    assert '    x-axis ["v5", "candidate"]' in sections[0]["charts"][0]
    assert sections[1]["caption"] == "**ROC curves** of the candidate (blue; no baseline was scored on this holdout) on the same 143 holdout rows, positive class `1`, at false positive rates 0, 5, …, 100%."
    assert sections[1]["charts"][0].splitlines()[0].endswith('"plotColorPalette": "#2563eb"}}}}%%')
    report.repeats = {"count": 3, "seeds": [7, 8, 9], "metrics": {}}
    assert comment_charts(report)[1]["caption"].endswith("0, 5, …, 100%. The candidate's curve is its first seed's model (`training.repeats`); the table's metrics are the mean.")


def test_charts_are_dropped_first_when_the_comment_is_too_long() -> None:
    report = chart_report()
    report.confusion = {"labels": list(range(400)), "matrix": [[1] * 400 for _ in range(400)]}
    body = render_comment(report)
    assert "truncated to fit" in body and "```mermaid" not in body


# -- Mermaid's own renderer ------------------------------------------------------------------


def render_in_chromium(charts: list[str], tmp_path: Path, package: str = "mermaid") -> list[dict[str, Any]]:
    """Each chart through ``mermaid.render`` in headless Chromium: {"ok", "svg"} or {"ok": False, "error"}."""
    mermaid_js = MERMAID / package / "dist" / "mermaid.min.js"
    if not mermaid_js.is_file():
        why = f"{mermaid_js.relative_to(Path(__file__).parent.parent)} is missing: run `npm ci --prefix tests/mermaid` (.ci/run does)"
        missing(why)
    chromium = chromium_binary()
    payload = json.dumps(charts).replace("</", "<\\/")
    page = tmp_path / "charts.html"
    page.write_text(
        '<!doctype html><html><body><pre id="out">pending</pre>'
        f'<script src="{mermaid_js.resolve().as_uri()}"></script>'
        "<script>mermaid.initialize({startOnLoad: false});"
        f"(async () => {{ const charts = {payload}; const out = [];"
        "for (let i = 0; i < charts.length; i++) {"
        "  try { const r = await mermaid.render('chart' + i, charts[i]); out.push({ok: true, svg: r.svg}); }"
        "  catch (e) { out.push({ok: false, error: String((e && e.message) || e)}); } }"
        "document.getElementById('out').textContent = JSON.stringify(out); })();</script></body></html>"
    )
    args = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000", "--dump-dom", page.as_uri()]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="out">(.*?)</pre>', proc.stdout, re.S)
    assert found is not None and found.group(1) != "pending", (proc.returncode, proc.stderr[-2000:])
    return json.loads(html.unescape(found.group(1)))


def _texts(svg: str, group: str) -> list[str]:
    part = re.search(rf'<g class="{group}">(.*?)</g>', svg, re.S)
    return [html.unescape(t) for t in re.findall(r"<text[^>]*>(.*?)</text>", part.group(1))] if part else []


def _x_labels(svg: str) -> list[str]:
    part = re.search(r'<g class="bottom-axis">.*?<g class="label">(.*?)</g>', svg, re.S)
    return [html.unescape(t) for t in re.findall(r"<text[^>]*>(.*?)</text>", part.group(1))] if part else []


def _drawn(svg: str) -> list[tuple[str, list[tuple[str, float]]]]:
    """Each plotted line: its colour and its points as (the x-axis label the point stands
    over, the value read back from its y coordinate through the y axis's tick labels)."""
    ticks = re.search(r'<g class="left-axis">.*?<g class="label">(.*?)</g>', svg, re.S).group(1)  # type: ignore[union-attr]
    marks = [(float(y), float(t)) for y, t in re.findall(r"translate\([\d.]+, ?([\d.]+)\)[^>]*>([-\d.]+)</text>", ticks)]
    (y0, v0), (y1, v1) = marks[0], marks[-1]
    xlabels = re.search(r'<g class="bottom-axis">.*?<g class="label">(.*?)</g>', svg, re.S).group(1)  # type: ignore[union-attr]
    at = {round(float(x)): html.unescape(t) for x, t in re.findall(r"translate\(([\d.]+), ?[\d.]+\)[^>]*>(.*?)</text>", xlabels)}
    out = []
    for attrs in re.findall(r'<g class="line-plot-\d+"><path ([^>]*)>', svg):  # attribute order differs between versions
        d, colour = re.search(r'\bd="([^"]+)"', attrs).group(1), re.search(r'\bstroke="([^"]+)"', attrs).group(1)  # type: ignore[union-attr]
        points = [tuple(map(float, p.split(","))) for p in d.lstrip("M").split("L")]
        out.append((colour, [(at.get(round(x), f"x={x}"), v0 + (y - y0) * (v1 - v0) / (y1 - y0)) for x, y in points]))
    return out


@pytest.mark.parametrize("version", list(MERMAID_VERSIONS))
def test_mermaid_draws_every_chart_of_the_comment(tmp_path: Path, version: str) -> None:
    blocks = mermaid_blocks(render_comment(chart_report()))
    hostile = history_chart("f1", ["v1", 'a "quoted" <b>x</b> `tick`\nnext; %% 50%', "PR #9"], [0.5, 0.6, 0.7])
    broken = "xychart-beta\n    line [0.5, 1e-05]"  # an exponent: what number() never writes
    docs = mermaid_blocks((Path(__file__).parent.parent / "docs" / "configuration.md").read_text())  # the docs' examples
    results = render_in_chromium([*blocks, hostile, broken, *docs], tmp_path, MERMAID_VERSIONS[version])
    assert len(docs) == 2 and all(r["ok"] for r in results[-2:]), results[-2:]
    results = results[: len(blocks) + 2]
    for block, result in zip(blocks + [hostile], results):
        assert result["ok"], (block, result.get("error"))
        assert 'aria-roledescription="xychart"' in result["svg"]
    assert not results[-1]["ok"] and "Parse error" in results[-1]["error"]  # the check does catch bad text
    (acc, f1, loss, roc, odd) = [r["svg"] for r in results[:5]]
    assert _texts(acc, "chart-title") == ["accuracy (higher is better)"] and _x_labels(acc) == ["v3", "v4", "v5", "PR #7"]
    assert _texts(roc, "chart-title") == ["ROC: candidate (blue) AUC 0.995, baseline (orange) AUC 0.991"]
    assert _x_labels(loss) == ["v4", "v5", "PR #7"]
    # What is drawn is our numbers, each over its own label, in the colours the title names.
    drawn = _drawn(roc)
    assert [c for c, _ in drawn] == ["#f97316", "#2563eb"]
    for (_, points), line in zip(drawn, ROC["lines"]):
        assert [x for x, _ in points] == [str(round(f * 100)) for f in GRID]
        assert [v for _, v in points] == pytest.approx([t * 100 for t in line["tpr"]], abs=0.2)
    ((colour, points),) = _drawn(f1)
    assert colour == "#2563eb" and [x for x, _ in points] == ["v3", "v4", "v5", "PR #7"]
    assert [v for _, v in points] == pytest.approx([0.9402, 0.9551, 0.9613, 0.9667], abs=0.0005)
    assert _x_labels(odd) == ["v1", "a ”quoted” ‹b›x‹/b› 'tick' next; %% 50%", "PR #9"]
