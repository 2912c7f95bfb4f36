"""`mlops rollback ENV`: a PR pinning ENV's previous model (or --to VERSION)."""

from __future__ import annotations

import click

from mlgitops.commands.options import config_option, forge_option, guarded, repo_option, token_option
from mlgitops.errors import EXIT_OK


@click.command()
@click.argument("env")
@click.option("--to", "to", type=int, default=None, help="Registry version to pin (default: the manifest's previous pin).")
@config_option
@repo_option
@forge_option
@token_option
@guarded
def rollback(env: str, to: int | None, config: str | None, repo: str | None, forge: str, token: str | None) -> int:
    """Open (or update) a PR that pins ENV's previous model (or --to VERSION)."""
    from mlgitops.deploy.ops import rollback_command
    from mlgitops.events.handlers import deploy_outputs
    from mlgitops.forges import actions_runtime
    from mlgitops.report.present import present_deploy

    outcome = rollback_command(repo, config, forge, token, env, to)
    present_deploy(outcome)
    actions_runtime.set_outputs(deploy_outputs(outcome))
    return EXIT_OK
