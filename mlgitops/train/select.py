"""Which way a model is trained: the user's command, a sweep of candidates, or the one
configured estimator. Above both ``training`` and ``sweep``, so neither imports the other."""

from __future__ import annotations

from pathlib import Path

from mlgitops.config.loader import Config, LoadedConfig
from mlgitops.data.load import Dataset
from mlgitops.train.sweep import run_sweep
from mlgitops.train.training import Trained, fit_estimator, run_command


def train(cfg: LoadedConfig, dataset: Dataset, root: Path, trusted: Config | None = None) -> Trained:
    """Train as the config says. ``trusted`` is the config whose security-relevant
    settings are in force (the base ref's on a pull request; None: none is trusted)."""
    if cfg.config.training.command:
        return run_command(cfg, dataset, root, trusted)
    if cfg.config.training.sweep is not None:
        return run_sweep(cfg, dataset, trusted)
    return fit_estimator(cfg, dataset)
