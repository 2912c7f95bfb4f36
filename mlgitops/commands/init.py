"""`mlops init`: the scaffold a repository starts from."""

from __future__ import annotations

from pathlib import Path

import click

from mlgitops.commands.options import guarded
from mlgitops.errors import EXIT_OK

DEFAULT_ACTION_REF = "mlgitops/mlgitops/actions/pull-request@v1"


@click.command()
@click.option("--data", default="sklearn:breast_cancer", show_default=True, help="Data path for the new mlops.yaml.")
@click.option("--target", default="target", show_default=True, help="Target column for the new mlops.yaml.")
@click.option("--action-ref", default=DEFAULT_ACTION_REF, show_default=True, help="The composite action the workflow uses (OWNER/REPO/actions/pull-request@REF); a tag or branch is pinned to its commit sha (git ls-remote).")
@click.option("--branch", default="main", show_default=True, help="The default branch: a push to it runs the deploy job.")
@click.option("--registry", "registry", default="auto", show_default=True, help="registry.url for the new mlops.yaml: auto (GitHub's container registry, oci://ghcr.io/OWNER/REPO/models, when the origin remote is on github.com; else the folder .mlops/registry), a URL (s3://..., oci://...), or a folder.")
@click.option("--environments", default="staging,production", show_default=True, help="Deployment environments, in promotion order (comma-separated): a merge opens the promotion PR for the first; each later one is promoted from the one before by a manual workflow run held by its GitHub Environment (required reviewers, its own secrets).")
@click.option("--workspace", is_flag=True, help="Several models in this repository: write mlops-workspace.yaml (models/*/mlops.yaml), a first model at models/<name>/mlops.yaml when there is none, and the workflow for every model.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option("--repo", default=None, help="Repository folder (default: the current one).")
@guarded
def init(data: str, target: str, action_ref: str, branch: str, registry: str, environments: str, workspace: bool, force: bool, repo: str | None) -> int:
    """Write a commented mlops.yaml and .github/workflows/mlops.yml that uses the action."""
    from mlgitops.config.scaffold import write_scaffold

    for path, created in write_scaffold(Path(repo or "."), data, target, action_ref, force, branch, registry, tuple(e.strip() for e in environments.split(",") if e.strip()), workspace):
        click.echo(f"{'wrote' if created else 'kept (exists; --force overwrites)'} {path}")
    if workspace:
        click.echo("next: add a folder with an mlops.yaml per model under models/, mlops validate, commit, open a pull request; then require the `mlops/gate` check (every model's aggregate) on your default branch")
    else:
        click.echo("next: mlops validate, commit, open a pull request; then require the `mlops/gate` check on your default branch")
    return EXIT_OK
