"""`mlops monitor --current PATH`: drift and live metrics against the deployed model."""

from __future__ import annotations

import json

import click

from mlgitops.commands.options import config_option, forge_option, guarded, json_option, repo_option, token_option


@click.command()
@click.option("--current", "current", required=True, type=click.Path(dir_okay=False), help="CSV or Parquet of recent (production) data; with the target column, live metrics are checked too.")
@click.option("--env", "env", default=None, help="Environment whose deployed model to check (default: deploy.baseline, else the first).")
@click.option("--retrain-pr", is_flag=True, help="Over threshold, also open (or update) a PR that moves data.path to this snapshot.")
@config_option
@repo_option
@forge_option
@token_option
@json_option
@guarded
def monitor(current: str, env: str | None, retrain_pr: bool, config: str | None, repo: str | None, forge: str, token: str | None, as_json: bool) -> int:
    """Drift of recent data (and live metrics) against the deployed model; one issue when over threshold."""
    from mlgitops.deploy.monitor import monitor_command

    outcome = monitor_command(current, env, retrain_pr, config, repo, forge, token)
    if as_json:
        click.echo(json.dumps({"message": outcome.message, "drift": outcome.drift, "metrics": outcome.metrics, "gates": [g.__dict__ for g in outcome.gates], "issue": outcome.issue.__dict__ if outcome.issue else None, "pull": outcome.pull.__dict__ if outcome.pull else None}, indent=2, default=str))
        return outcome.exit_code
    click.echo(outcome.message)
    if outcome.issue is not None:
        click.echo(f"  issue: {outcome.issue.url}")
    if outcome.pull is not None:
        click.echo(f"  retraining PR: {outcome.pull.url}")
    return outcome.exit_code
