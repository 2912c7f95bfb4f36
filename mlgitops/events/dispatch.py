"""One door for every event: ``handle(event, context) -> Outcome``.

The CLI (``mlops run``, ``mlops deploy``), the webhook service's child process and the
Prefect entry flow all come here; none builds another's argv. The route:

============================================  ==========================================
event                                         handler (``mlgitops.events.handlers``)
============================================  ==========================================
push to the default branch                    ``deploy``: register, open promotion PRs
issue_comment                                 ``chatops``: decide, then run the command
pull_request, merge_group, a local branch     ``pull_request``: train, gate, comment
anything else (schedule, workflow_dispatch…)  nothing to do, with the reason (exit 0)
============================================  ==========================================

An :class:`Outcome` carries everything a front door shows: the exit code, the report
or deploy outcome, where the comment went, notes and the Actions step outputs;
:func:`mlgitops.report.present.present` prints it the same way for all of them.

Where a process boundary is wanted (the webhook service runs a delivery's code as a
child that must not share its memory), the child enters through :func:`child_main`,
``python -I -m mlgitops.events.dispatch REQUEST`` with a JSON request: the same
dispatcher, the same printing, the exit code as the process's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from mlgitops.errors import EXIT_OK
from mlgitops.events.outcome import Context, Outcome


def route(event: Any) -> str:
    """The handler an event goes to (see the module's table)."""
    if event.kind == "push" and not event.deleted and event.ref_type == "branch" and event.head_ref == (event.default_branch or "main"):
        return "deploy"
    if event.kind == "issue_comment":
        return "chatops"
    if event.kind == "local":
        return "pull_request"
    ok, _why = event.should_run()
    return event.kind if ok else "skipped"


def handle(event: Any, ctx: Context, route_as: str | None = None) -> Outcome:
    """Handle one event; our errors propagate as MlopsError (exit code on the class).

    ``route_as`` names the handler outright (``mlops deploy`` deploys the checked-out
    commit, whatever its branch); else the event's route decides, and an event from a
    payload is first matched to the local clone (``localize``: shas, a stale base)."""
    from mlgitops.events import handlers
    from mlgitops.events.payloads import localize

    where = route_as or route(event)
    if where == "skipped":
        return Outcome(EXIT_OK, "skipped", message=f"nothing to do: {event.should_run()[1]}")
    if where == "chatops":
        return handlers.chatops(event, ctx)
    if route_as is None and event.kind != "local":
        event = localize(event, ctx.config_paths()[0])
    if where == "deploy":
        return handlers.deploy(event, ctx)
    return handlers.pull_request(event, ctx)


def event_for(root: Path, event_path: str | Path | None, event_name: str | None, base: str | None) -> Any:
    """The event a run is for: a payload file (``base`` overrides a PR's base), else the
    checked-out branch against ``base`` (default main)."""
    from mlgitops.events.payloads import event_from_payload, local_event

    if not event_path:
        return local_event(root, base or "main")
    event = event_from_payload(Path(event_path), event_name)
    if base and route(event) in ("pull_request", "merge_group"):
        event = type(event)(**{**event.to_dict(), "base_ref": base, "base_sha": None})
    return event


# -- the child's door -----------------------------------------------------------------------
def handle_request(request: dict[str, Any], echo: Any = None, keep: list[Any] | None = None) -> int:
    """Handle the event a JSON-safe request names, print the outcome, return the exit code.

    ``request``: ``root``, ``event_path``, ``event_name``, optional ``base``, ``config``,
    ``forge`` (default local), ``check_only``, and ``result`` (a file to write the
    outcome's summary to). Errors are reported and mapped to exit codes as the CLI does;
    ``keep`` (in process only) collects the outcome.
    """
    from mlgitops.guard import call_guarded
    from mlgitops.report.present import present

    result: dict[str, Any] = {}

    def work() -> int:
        root = Path(request["root"])
        event = event_for(root, request.get("event_path"), request.get("event_name"), request.get("base"))
        ctx = Context(root=root, config=Path(request["config"]) if request.get("config") else None, forge=request.get("forge") or "local", check_only=bool(request.get("check_only")))
        outcome = handle(event, ctx)
        present(outcome, as_json=False, echo=echo)
        result.update(outcome.summary())
        if keep is not None:
            keep.append(outcome)
        return outcome.exit_code

    code = call_guarded("run", work, echo=echo)
    if request.get("result"):
        Path(request["result"]).write_text(json.dumps({**result, "exit_code": code}), encoding="utf-8")
    return code


def child_main() -> None:
    """``python -I -m mlgitops.events.dispatch REQUEST``: the request as one JSON argument
    (paths and names only, never a secret), else as JSON on stdin."""
    request = json.loads(sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read())
    sys.exit(handle_request(request))


if __name__ == "__main__":
    child_main()
