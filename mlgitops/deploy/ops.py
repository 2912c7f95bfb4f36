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
