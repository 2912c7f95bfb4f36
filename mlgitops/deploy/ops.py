"""The work of `mlops promote`, `mlops rollback` and `mlops status`: find the config,
build each environment's forge, call ``deploy.promote``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlgitops.config.loader import LoadedConfig
from mlgitops.deploy.promote import Outcome, promote, rollback, status
from mlgitops.deploy.registry.urls import registry_for


def _loaded(repo: str | None, config: str | None) -> tuple[Path, LoadedConfig]:
    from mlgitops.config.loader import load_config
    from mlgitops.config.locate import find_config
    from mlgitops.config.workspace import WORKSPACE_FILE, workspace_root
    from mlgitops.errors import InputError

    if workspace_root(repo, config) is not None:  # promote and rollback act on one model
        raise InputError(f"this repository has several models ({WORKSPACE_FILE}): name one with --config", hint="e.g. mlops promote staging production --config models/churn/mlops.yaml")
    root, cpath, rel = find_config(repo, config)
    return root, load_config(cpath, display=rel)


def promote_command(repo: str | None, config: str | None, forge: str, token: str | None, source: str, dest: str) -> Outcome:
    """`mlops promote SOURCE DEST`."""
    from mlgitops.forges.factory import deploy_targets

    root, cfg = _loaded(repo, config)
    return promote(cfg, deploy_targets(cfg, root, forge, token), source, dest, registry_for(cfg))


def rollback_command(repo: str | None, config: str | None, forge: str, token: str | None, env: str, to: int | None) -> Outcome:
    """`mlops rollback ENV [--to N]`."""
    from mlgitops.forges.factory import deploy_targets

    root, cfg = _loaded(repo, config)
    return rollback(cfg, deploy_targets(cfg, root, forge, token), env, to, registry_for(cfg))


def deploy_model(cfg: LoadedConfig, root: Path, rel: str, event: Any, forge: str, targets: dict[str, Any]) -> Outcome:
    """One model's deploy (a push to the default branch, `mlops deploy`): which PR the
    commit came from, train or reuse, register, the promotion PR, MLflow's aliases."""
    from mlgitops.deploy.promote import merged_pr, run_deploy

    origin = merged_pr(root, event.head_sha)
    if not origin and forge != "local" and targets:
        finder = next(iter(targets.values())).forge
        if hasattr(finder, "pull_for_sha") and event.head_sha:
            number = finder.pull_for_sha(event.head_sha)
            origin = {"pr": number} if number else {}
    result = run_deploy(cfg, root, rel, event, targets, origin)
    if cfg.config.tracking.mlflow is not None:  # MLflow follows git: the version deployed, each environment's alias at its pin
        from mlgitops.tracking.mlflow_registry import follow_deploy

        result.details = [*result.details, *follow_deploy(cfg, targets, result.version, registry_for(cfg), event.head_sha)]
    return result


@dataclass
class StatusView:
    name: str
    rows: list[dict[str, Any]]
    versions: list[int]
    url: str


def status_command(repo: str | None, config: str | None, forge: str, token: str | None) -> StatusView:
    """`mlops status`: each environment's pin and pending PRs, and the registry's versions."""
    from mlgitops.forges.factory import deploy_targets

    root, cfg = _loaded(repo, config)
    rows = status(cfg, deploy_targets(cfg, root, forge, token))
    if cfg.config.tracking.mlflow is not None:
        from mlgitops.tracking.mlflow_registry import alias_status

        alias_status(cfg, rows)  # an alias moved by hand in MLflow is reported, not followed
    registry = registry_for(cfg)
    return StatusView(cfg.config.name, rows, [v.version for v in registry.versions(cfg.config.name)], registry.url)


def workspace_status(root: Path, forge: str, token: str | None) -> list[tuple[str, StatusView]]:
    """`mlops status` in a workspace: every model's view, in the workspace's order."""
    from mlgitops.config.workspace import load_members, load_workspace

    views = []
    for cfg in load_members(load_workspace(root)):
        rel = Path(cfg.path).resolve().relative_to(root.resolve()).as_posix()
        views.append((rel, status_command(str(root), str(cfg.path), forge, token)))
    return views
