"""Print an :class:`~mlgitops.events.dispatch.Outcome` the one way every front door
shows it (terminal, ``--json``, the webhook child's log, the Prefect flow run's log), and
write its GitHub Actions step outputs."""

from __future__ import annotations

import json
from typing import Any

from mlgitops.guard import Echo, _click_echo


def present(outcome: Any, as_json: bool = False, echo: Echo | None = None) -> None:
    from mlgitops.forges import actions_runtime

    say = echo or _click_echo
    if outcome.models:  # a workspace: one section per model, then the aggregate
        from mlgitops.report.workspace import present_models

        present_models(outcome, as_json, say)
    elif outcome.route in ("pull_request", "merge_group"):
        _present_run(outcome, as_json, say)
    elif outcome.route == "deploy" and as_json:
        result = outcome.deploy
        say(json.dumps({"message": result.message, "version": result.version.to_dict() if result.version else None, "pull": result.pull.__dict__ if result.pull else None}, indent=2, default=str))
    elif outcome.route == "deploy":
        present_deploy(outcome.deploy, say)
    else:
        say(outcome.message)
    actions_runtime.set_outputs(outcome.outputs)


def _present_run(outcome: Any, as_json: bool, say: Echo) -> None:
    from mlgitops.report.render import print_terminal, render_json

    if as_json:
        say(render_json(outcome.report))
    else:
        from rich.console import Console

        if say is _click_echo:
            print_terminal(outcome.report, Console(highlight=False), outcome.where)
        else:  # a captured log: the same table, as plain text
            import io

            buffer = io.StringIO()
            print_terminal(outcome.report, Console(file=buffer, highlight=False, width=120), outcome.where)
            say(buffer.getvalue().rstrip("\n"))
    if outcome.queue_line:
        say(outcome.queue_line, err=as_json)
    for note in outcome.notes:
        say(f"note: {note}", err=True)


def present_deploy(result: Any, echo: Echo | None = None) -> None:
    """A deploy, promote or rollback outcome: its message, details and pull request."""
    say = echo or _click_echo
    say(result.message)
    for line in getattr(result, "details", []):
        say(f"  {line}")
    if result.pull is not None:
        say(f"  pull request: {result.pull.url}")
