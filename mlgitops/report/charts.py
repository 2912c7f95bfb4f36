"""Mermaid charts for the PR comment, from the report's numbers (``report.charts``).

GitHub draws a ```` ```mermaid ```` block in a comment as a picture, so the comment
needs no image host. Two kinds, both ``xychart-beta`` (Mermaid 10.6+):

- each gated metric over the last versions deployed to the baseline's environment
  (the metrics recorded when each was registered, each on its own holdout) and the
  candidate (on this run's holdout): one line chart per metric, since metrics have
  different scales;
- for a binary classifier, the ROC curves of the baseline and the candidate on the
  same holdout rows, sampled at 21 evenly spaced false positive rates (an xychart
  takes no (x, y) pairs: one value per x-axis category). The x axis is those rates as
  categories (0, 5, ..., 100 %), each point under its label: a numeric x axis places
  a line's values differently across Mermaid versions (10.6 puts 11 of 21 values on
  0 --> 1, 11.x spreads all 21), categories are placed the same by both.

xychart has no legend: the colours are set (``plotColorPalette``) and named in the
title. Its numbers take no exponent, so they are written in fixed point; its quoted
strings end at the next ``"`` with no escape, so labels are made safe by
:func:`quote`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from mlgitops.train.metrics import METRICS

BLUE = "#2563eb"  # the candidate
ORANGE = "#f97316"  # the baseline
HISTORY_SIZE = {"width": 600, "height": 260, "titleFontSize": 16}
ROC_SIZE = {"width": 600, "height": 440, "titleFontSize": 16}


def number(value: float, digits: int = 4) -> str:
    """``value`` to ``digits`` significant digits in fixed point (Mermaid's numbers
    have no exponent), trailing zeros dropped: 0.96674 -> "0.9667", 123456.7 -> "123457"."""
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    return _fixed(value, max(0, digits - 1 - exponent))


def _fixed(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def quote(text: Any) -> str:
    """A Mermaid quoted string that shows ``text``: a quoted string ends at the next
    ``"`` (there is no escape), a leading backtick makes it Markdown, HTML tags are
    sanitized away and a line break ends the statement; those characters get look-alikes."""
    out = str(text)
    for old, new in (("\r\n", " "), ("\n", " "), ("\r", " "), ('"', "”"), ("`", "'"), ("<", "‹"), (">", "›")):
        out = out.replace(old, new)
    return f'"{out}"'


def _init(size: dict[str, Any], colours: list[str]) -> str:
    """The chart's size and line colours, as a Mermaid init directive."""
    return "%%{init: " + json.dumps({"xyChart": size, "themeVariables": {"xyChart": {"plotColorPalette": ", ".join(colours)}}}) + "}%%"


def axis_range(values: list[float], metric: str) -> tuple[str, str]:
    """A y range a little wider than ``values``, on round numbers, within the metric's
    possible values (0 to 1 for shares, from 0 for errors, up to 1 for r2)."""
    lo, hi = min(values), max(values)
    span = hi - lo
    pad = span * 0.2 if span > 0 else max(abs(hi) * 0.05, 0.01)
    lo, hi = lo - pad, hi + pad
    unit_exp = math.floor(math.log10(hi - lo)) - 1
    unit = 10.0**unit_exp
    lo, hi = math.floor(round(lo / unit, 6)) * unit, math.ceil(round(hi / unit, 6)) * unit  # round(): 0.475 / 0.001 is 474.99999
    spec = METRICS.get(metric)
    if spec is not None and (spec.bounded_01 or not spec.higher_is_better):
        lo = max(lo, 0.0)
    if spec is not None and (spec.bounded_01 or metric == "r2"):
        hi = min(hi, 1.0)
    decimals = max(0, -unit_exp)
    return _fixed(lo, decimals), _fixed(hi, decimals)


def history_chart(metric: str, labels: list[str], values: list[float]) -> str:
    """One metric over deployed versions and the candidate (the last label)."""
    spec = METRICS.get(metric)
    way = "" if spec is None else (" (higher is better)" if spec.higher_is_better else " (lower is better)")
    lo, hi = axis_range(values, metric)
    return "\n".join([
        _init(HISTORY_SIZE, [BLUE]),
        "xychart-beta",
        f"    title {quote(metric + way)}",
        f"    x-axis [{', '.join(quote(label) for label in labels)}]",
        f"    y-axis {quote(metric)} {lo} --> {hi}",
        f"    line [{', '.join(number(v) for v in values)}]",
    ])


def roc_chart(roc: dict[str, Any]) -> str:
    """The ROC curves on one x axis: the baseline drawn first, the candidate on top."""
    lines = sorted(roc["lines"], key=lambda line: line["side"] == "candidate")
    colour = {"candidate": (BLUE, "blue"), "baseline": (ORANGE, "orange")}
    named = ", ".join(f"{line['side']} ({colour[line['side']][1]}) AUC {number(line['auc'], 3)}" for line in reversed(lines))
    out = [
        _init(ROC_SIZE, [colour[line["side"]][0] for line in lines]),
        "xychart-beta",
        f"    title {quote('ROC: ' + named)}",
        f"    x-axis {quote('false positive rate (%)')} [{', '.join(quote(_fixed(f * 100, 1)) for f in roc['fpr'])}]",
        f"    y-axis {quote('true positive rate (%)')} 0 --> 100",
    ]
    out += [f"    line [{', '.join(_fixed(t * 100, 1) for t in line['tpr'])}]" for line in lines]
    return "\n".join(out)


def comment_charts(report: Any) -> list[dict[str, Any]]:
    """The comment's chart sections: ``[{"caption", "charts": [mermaid text]}]``."""
    data = report.charts or {}
    sections = []
    history = data.get("history")
    if history and history.get("versions"):
        versions = history["versions"]
        pr = (report.event or {}).get("pr_number")
        candidate = f"PR #{pr}" if pr is not None else "candidate"
        charts, shown = [], []
        for row in report.metrics:
            if not row.gate or row.candidate is None:
                continue
            known = [v for v in versions if v["metrics"].get(row.name) is not None]
            if not known:
                continue
            charts.append(history_chart(row.name, [v["label"] for v in known] + [candidate], [v["metrics"][row.name] for v in known] + [row.candidate]))
            shown.append(f"`{row.name}`")
        if charts:
            span = versions[0]["label"] if len(versions) == 1 else f"{versions[0]['label']}–{versions[-1]['label']}"
            caption = (
                f"**Gated metrics over the deployed versions**: {', '.join(shown)} of the last {_versions(len(versions))} deployed to "
                f"`{history['env']}` ({span}, from `{history['manifest']}`'s history on `{history['ref']}`; each as recorded when it was "
                f"registered, on its own holdout), then {candidate} on this run's holdout."
            )
            sections.append({"caption": caption, "charts": charts})
    roc = data.get("roc")
    if roc and roc.get("lines"):
        sides = [line["side"] for line in roc["lines"]]
        if sides == ["candidate"]:
            who = "the candidate (blue; no baseline was scored on this holdout)"
        elif sides == ["baseline"]:
            who = "the baseline (orange; the candidate gives no class probabilities)"
        else:
            who = "the baseline (orange) and the candidate (blue)"
        caption = f"**ROC curves** of {who} on the same {roc['rows']} holdout rows, positive class `{roc['positive']}`, at false positive rates 0, 5, …, 100%."
        if report.repeats and "candidate" in sides:
            caption += " The candidate's curve is its first seed's model (`training.repeats`); the table's metrics are the mean."
        sections.append({"caption": caption, "charts": [roc_chart(roc)]})
    return sections


def _versions(n: int) -> str:
    return "version" if n == 1 else f"{n} versions"
