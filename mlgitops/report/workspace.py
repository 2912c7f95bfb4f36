"""How a workspace's outcome prints: each model's section, then the aggregate line
(terminal), or one JSON document with every model (``--json``)."""

from __future__ import annotations

import json
from typing import Any


def present_models(outcome: Any, as_json: bool, say: Any) -> None:
    if outcome.route == "deploy":
        _deploys(outcome, as_json, say)
        return
    from mlgitops.report.render import render_json

    if as_json:
        models = [
            {"name": m.name, "config": m.config_rel, "state": m.state, "exit_code": m.exit_code, "message": m.message, "error": m.error or None, "report": json.loads(render_json(m.report)) if m.report is not None else None}
            for m in outcome.models
        ]
        say(json.dumps({"verdict": outcome.outputs.get("verdict"), "summary": outcome.outputs.get("summary"), "exit_code": outcome.exit_code, "models": models}, indent=2, default=str))
    else:
        for m in outcome.models:
            say(f"── {m.name} ({m.config_rel}) ──")
            if m.report is not None:
                _table(m.report, say)
                if m.comment is not None and m.comment.url and not outcome.where:  # GitHub: each model's own comment
                    say(f"comment: {m.comment.url}")
            elif m.state == "unchanged":
                say(f"UNCHANGED {m.name}: {m.message}; not trained")
            else:
                say(f"ERROR {m.name}:\n{m.error or m.message}")
        say(outcome.message)
        if outcome.where:
            say(f"comments: {outcome.where} (one per model)")
    if outcome.queue_line:
        say(outcome.queue_line, err=as_json)
    for note in outcome.notes:
        say(f"note: {note}", err=True)


def _table(report: Any, say: Any) -> None:
    """The one-model terminal view, as ``present`` prints it."""
    from rich.console import Console

    from mlgitops.guard import _click_echo
    from mlgitops.report.render import print_terminal

    if say is _click_echo:
        print_terminal(report, Console(highlight=False))
    else:  # a captured log: the same table, as plain text
        import io

        buffer = io.StringIO()
        print_terminal(report, Console(file=buffer, highlight=False, width=120))
        say(buffer.getvalue().rstrip("\n"))


def _deploys(outcome: Any, as_json: bool, say: Any) -> None:
    if as_json:
        rows = []
        for r in outcome.models:
            result = r.result
            rows.append({"name": r.name, "config": r.config_rel, "exit_code": r.exit_code, "message": result.message if result else None, "error": r.error or None, "version": result.version.to_dict() if result and result.version else None, "pull": result.pull.__dict__ if result and result.pull else None})
        say(json.dumps({"message": outcome.message, "exit_code": outcome.exit_code, "models": rows}, indent=2, default=str))
        return
    for r in outcome.models:
        if r.result is None:
            say(f"{r.name}: {r.error}")
            continue
        say(f"{r.name}: {r.result.message}")
        for line in getattr(r.result, "details", []):
            say(f"  {line}")
        if r.result.pull is not None:
            say(f"  pull request: {r.result.pull.url}")
    say(outcome.message)
