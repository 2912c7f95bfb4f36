"""Which way a model is trained: the user's command, a sweep of candidates, or the one
configured estimator. Above both ``training`` and ``sweep``, so neither imports the other."""

from __future__ import annotations

from pathlib import Path

from mlgitops.config.loader import Config, LoadedConfig
from mlgitops.data.load import Dataset
from mlgitops.train.sweep import run_sweep
from mlgitops.train.seeding import base_seed
from mlgitops.train.training import Trained, fit_estimator, run_command


def train(cfg: LoadedConfig, dataset: Dataset, root: Path, trusted: Config | None = None, seed: int | None = None) -> Trained:
    """Train as the config says. ``trusted`` is the config whose security-relevant
    settings are in force (the base ref's on a pull request; None: none is trusted).
    ``seed``: default the config's (:func:`~mlgitops.train.seeding.base_seed`)."""
    seed = base_seed(cfg) if seed is None else seed
    if cfg.config.training.command:
        return run_command(cfg, dataset, root, trusted, seed)
    if cfg.config.training.sweep is not None:
        return run_sweep(cfg, dataset, trusted, seed)
    return fit_estimator(cfg, dataset, seed=seed)


def train_repeats(cfg: LoadedConfig, dataset: Dataset, root: Path, trusted: Config | None = None) -> list[Trained]:
    """``training.repeats`` trainings with seeds seed, seed+1, ...; the first as :func:`train`.
    A sweep chooses once, with the first seed; the later seeds refit its winner."""
    seed = base_seed(cfg)
    first = train(cfg, dataset, root, trusted, seed)
    out = [first]
    for i in range(1, cfg.config.training.repeats):
        if cfg.config.training.command or cfg.config.training.sweep is None:
            out.append(train(cfg, dataset, root, trusted, seed + i))
        else:
            out.append(fit_estimator(cfg, dataset, first.estimator, first.params, seed + i))
    return out
