"""Seeds for training: a built-in estimator's ``random_state``, a command's environment.

The seed is the config's ``data.holdout.seed`` (already part of the model's cache key),
plus the repeat's index under ``training.repeats``. A built-in estimator that takes
``random_state`` and was given none in ``training.params`` gets the seed, and the comment
says so. A training command gets ``MLOPS_SEED`` and ``PYTHONHASHSEED``; a Python one
also starts with ``random`` and NumPy's global generator seeded from it, so a script
that never seeds (a RandomForest without ``random_state`` draws from NumPy's global
RandomState) still trains the same model from the same inputs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mlgitops.config.loader import LoadedConfig
from mlgitops.run.childenv import SEED_RANGE, seed_env

# Put first on the command's PYTHONPATH as `sitecustomize`, which Python imports at
# start-up (https://docs.python.org/3/library/site.html). Hand-written: no library
# seeds an unmodified script from outside. It then runs the sitecustomize it shadows.
SITECUSTOMIZE = '''\
"""Written by mlgitops for the training command: seeds Python's random and NumPy's
global generator from MLOPS_SEED, then runs the sitecustomize this file shadows."""
import os as _os
import sys as _sys


def _mlops_seed():
    seed = int(_os.environ["MLOPS_SEED"])
    import random

    random.seed(seed)
    try:
        import numpy
    except Exception:
        return
    numpy.random.seed(seed)


try:
    _mlops_seed()
except Exception:
    pass
_here = _os.path.dirname(_os.path.abspath(__file__))
_sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or ".") != _here]
_self = _sys.modules.pop(__name__, None)
try:
    import importlib as _importlib

    _importlib.import_module("sitecustomize")
except ImportError:
    pass
finally:
    if _self is not None:
        _sys.modules.setdefault(__name__, _self)
'''


def base_seed(cfg: LoadedConfig) -> int:
    return cfg.config.data.holdout.seed


def seed_estimator(estimator: Any, given: dict[str, Any], seed: int) -> str | None:
    """Set ``random_state`` on ``estimator`` when it takes one and ``given`` (the
    parameters from mlops.yaml) has none; the note for the comment, or None."""
    get_params = getattr(estimator, "get_params", None)
    if get_params is None or "random_state" in given:
        return None
    try:
        if "random_state" not in get_params(deep=False):
            return None
        value = seed % SEED_RANGE
        estimator.set_params(random_state=value)
    except Exception:  # noqa: BLE001 - a third-party estimator with its own get/set_params
        return None
    return f"{type(estimator).__name__} had no random_state: set to {value} from the seed (data.holdout.seed)"


def command_seed_env(seed: int, hook_dir: Path, parent: dict[str, str] | None = None) -> dict[str, str]:
    """``MLOPS_SEED``, ``PYTHONHASHSEED``, and ``PYTHONPATH`` led by ``hook_dir``,
    where the seeding sitecustomize is written."""
    hook_dir.mkdir(parents=True, exist_ok=True)
    (hook_dir / "sitecustomize.py").write_text(SITECUSTOMIZE)
    parent = dict(os.environ) if parent is None else parent
    path = os.pathsep.join([str(hook_dir), *([parent["PYTHONPATH"]] if parent.get("PYTHONPATH") else [])])
    return seed_env(seed) | {"PYTHONPATH": path}


def command_note(seed: int) -> str:
    value = seed % SEED_RANGE
    return f"The training command ran with MLOPS_SEED={value} and PYTHONHASHSEED={value}; Python's random and NumPy's global generator started seeded from it"
