"""`mlops validate`: the config and its data, without training or Prefect."""

from __future__ import annotations

import click

from mlgitops.commands.options import guarded
from mlgitops.errors import EXIT_OK


@click.command()
@click.option("--config", "config", default=None, help="Path of mlops.yaml (default: at the repo root).")
@click.option("--repo", default=None, help="Repository folder (default: the current one).")
@guarded
def validate(config: str | None, repo: str | None) -> int:
    """Check mlops.yaml and that its data loads with the target present (no training, no
    Prefect); in a workspace (mlops-workspace.yaml at the root, no --config), every model."""
    from mlgitops.config.workspace import workspace_root
    from mlgitops.data.check import validate_config, validate_workspace

    root = workspace_root(repo, config)
    click.echo("\n".join(validate_workspace(root) if root is not None else validate_config(repo, config)))
    return EXIT_OK
