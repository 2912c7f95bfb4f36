"""`mlops promote SOURCE DEST`: a promotion PR between environments."""

from __future__ import annotations

import click

from mlgitops.commands.options import config_option, forge_option, guarded, repo_option, token_option
from mlgitops.errors import EXIT_OK


@click.command()
@click.argument("source")
@click.argument("dest")
@config_option
@repo_option
@forge_option
@token_option
@guarded
def promote(source: str, dest: str, config: str | None, repo: str | None, forge: str, token: str | None) -> int:
    """Open (or update) a PR that deploys to DEST the model SOURCE runs."""
    from mlgitops.deploy.ops import promote_command
    from mlgitops.events.handlers import deploy_outputs
    from mlgitops.forges import actions_runtime
    from mlgitops.report.present import present_deploy

    outcome = promote_command(repo, config, forge, token, source, dest)
    present_deploy(outcome)
    actions_runtime.set_outputs(deploy_outputs(outcome))
    return EXIT_OK
