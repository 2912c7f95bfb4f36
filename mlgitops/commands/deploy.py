"""`mlops deploy`: what a push to the default branch runs, for the checked-out commit."""

from __future__ import annotations

import click

from mlgitops.commands.options import config_option, forge_option, guarded, json_option, repo_option, token_option


@click.command()
@config_option
@repo_option
@forge_option
@token_option
@json_option
@guarded
def deploy(config: str | None, repo: str | None, forge: str, token: str | None, as_json: bool) -> int:
    """Deploy flow for the checked-out commit (what a push to the default branch runs):
    reuse or train, gate against what is deployed, register, open the promotion PR."""
    from pathlib import Path

    from mlgitops.config.locate import find_config
    from mlgitops.events.dispatch import Context, handle
    from mlgitops.events.payloads import checked_out_push
    from mlgitops.report.present import present

    root, cpath, _rel = find_config(repo, config)
    outcome = handle(checked_out_push(root), Context(root, Path(cpath) if config else None, forge, token), route_as="deploy")
    present(outcome, as_json)
    return outcome.exit_code
