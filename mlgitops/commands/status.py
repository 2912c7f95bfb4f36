"""`mlops status`: what is deployed where."""

from __future__ import annotations

import json

import click

from mlgitops.commands.options import config_option, forge_option, guarded, repo_option, token_option
from mlgitops.errors import EXIT_OK


@click.command()
@config_option
@repo_option
@forge_option
@token_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@guarded
def status(config: str | None, repo: str | None, forge: str, token: str | None, as_json: bool) -> int:
    """What is deployed where, from the manifests on the default branch; in a workspace
    (mlops-workspace.yaml, no --config), every model's environments."""
    from mlgitops.config.workspace import workspace_root
    from mlgitops.deploy.ops import status_command, workspace_status

    root = workspace_root(repo, config)
    if root is not None:
        views = workspace_status(root, forge, token)
        if as_json:
            click.echo(json.dumps({"models": [{"name": v.name, "config": rel, "environments": v.rows, "registry": {"name": v.name, "versions": v.versions}} for rel, v in views]}, indent=2, default=str))
        else:
            for _rel, view in views:
                _print_table(view)
        return EXIT_OK
    view = status_command(repo, config, forge, token)
    if as_json:
        click.echo(json.dumps({"environments": view.rows, "registry": {"name": view.name, "versions": view.versions}}, indent=2, default=str))
    else:
        _print_table(view)
    return EXIT_OK


def _print_table(view: object) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{view.name}: deployments", title_justify="left")  # type: ignore[attr-defined]
    for col in ("environment", "version", "sha256", "artifact", "previous", "pending PR"):
        table.add_column(col)
    for row in view.rows:  # type: ignore[attr-defined]
        pending = ", ".join(f"#{p['number']} {p['title']}" for p in row["pending"]) or ""
        table.add_row(row["environment"], f"v{row['version']}" if row["version"] else "-", (row["sha256"] or "-")[:12], row["artifact"], f"v{row['previous']}" if row.get("previous") else "", pending)
    Console(highlight=False).print(table)
    for row in view.rows:  # type: ignore[attr-defined]
        if row.get("mlflow"):
            click.echo(f"mlflow {row['environment']}: {row['mlflow']}")
    click.echo(f"registry: {', '.join(f'v{v}' for v in view.versions) or 'no versions'} ({view.url})")  # type: ignore[attr-defined]
    if not view.rows:  # type: ignore[attr-defined]
        click.echo("no deploy.environments in mlops.yaml")
