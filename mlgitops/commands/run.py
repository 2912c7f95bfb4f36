"""`mlops run`: the flow an event calls for, through the dispatcher."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from mlgitops.commands.options import guarded


@click.command()
@click.option("--base", default=None, help="Branch or commit the PR targets (default: main, or the payload's base).")
@click.option("--event-path", type=click.Path(dir_okay=False), default=None, help="A GitHub event payload to run for (default on Actions: $GITHUB_EVENT_PATH, unless --base is given).")
@click.option("--event-name", default=None, help="The event's name (default: $GITHUB_EVENT_NAME when set, also with --event-path; else told from the payload). pull_request_target is refused.")
@click.option("--config", "config", default=None, help="Path of mlops.yaml (default: at the repo root).")
@click.option("--repo", default=None, help="Repository folder (default: the current one).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("--forge", type=click.Choice(["auto", "local", "github"]), default="auto", show_default=True, help="Where the comment and status go; auto: GitHub on an Actions runner with a token and a PR or merge_group event, else local files under .mlops/.")
@click.option("--token", default=None, help="GitHub token (default: $GITHUB_TOKEN). Never printed.")
@click.option("--check-command", is_flag=True, help="For a comment (issue_comment) event: only decide whether its /mlops command would run (parse, permission, fork); write nothing.")
@click.option("--deployment", default=None, envvar="MLOPS_DEPLOYMENT", help="Run the event on Prefect workers through this deployment (FLOW/DEPLOYMENT, e.g. mlops-event/mlops-event; needs PREFECT_API_URL) and wait for it. Default: $MLOPS_DEPLOYMENT, else run here.")
@click.option("--wait", "wait_seconds", default=3600, show_default=True, type=click.IntRange(1, 86_400), help="With --deployment: seconds to wait for the flow run to finish.")
@guarded
def run(base: str | None, event_path: str | None, event_name: str | None, config: str | None, repo: str | None, as_json: bool, forge: str, token: str | None, check_command: bool, deployment: str | None, wait_seconds: int) -> int:
    """Run the flow an event calls for: the pull-request flow for the checked-out
    branch, a pull_request payload or a merge queue's merge_group payload (the gate's
    status and check run only, no comment), the deploy flow for a push to the default
    branch, a ChatOps command for an issue_comment payload."""
    from mlgitops.config.locate import find_config
    from mlgitops.events.dispatch import Context, event_for, handle
    from mlgitops.forges import actions_runtime
    from mlgitops.report.present import present

    if as_json:
        actions_runtime.STREAM = sys.stderr  # keep stdout pure JSON
    root, cpath, _rel = find_config(repo, config)
    if not event_path and not base and os.environ.get("GITHUB_EVENT_PATH"):
        event_path = os.environ["GITHUB_EVENT_PATH"]  # on an Actions runner: the event that started the workflow
    if event_path and not event_name:
        # The runner's word beats a guess from the payload's shape: a pull_request_target
        # payload looks exactly like a pull_request one (issue 11).
        event_name = os.environ.get("GITHUB_EVENT_NAME") or None
    if deployment and not check_command:
        from mlgitops.service.prefect_deploy import run_event_on_deployment

        code, line = run_event_on_deployment(deployment, root, event_path, event_name, config, forge, wait_seconds)
        click.echo(line)
        return code
    # No --config: mlops.yaml at the root, or every model of mlops-workspace.yaml (Context.workspace)
    outcome = handle(event_for(root, event_path, event_name, base), Context(root, Path(cpath) if config else None, forge, token, check_command))
    present(outcome, as_json)
    return outcome.exit_code
