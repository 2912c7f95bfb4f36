"""Whether a model of a workspace changed between a PR's base and head: fingerprints,
not path guesses (no pandas, scikit-learn or Prefect).

A model is unchanged when its model key (data, holdout, target, features, task,
training spec, code files, library versions: :func:`plan.fingerprint.model_key`) and its
mlops.yaml as validated (gates, metrics, deploy...) are the same at the base commit as
in the working tree. A model the base does not have, or whose base config is invalid,
changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlgitops.config.loader import LoadedConfig
from mlgitops.plan.fingerprint import combine


@dataclass(frozen=True)
class Change:
    changed: bool
    why: str  # one line: what moved, or what stayed the same
    key: str = ""  # the head's model key (short in messages)


def fingerprint(cfg: LoadedConfig, model_key: str) -> str:
    """Everything a model's verdict depends on: its model key and its whole config."""
    return combine("workspace-model", model_key, cfg.config.model_dump(mode="json"))


def model_change(cfg: LoadedConfig, root: Path, config_rel: str, base_sha: str | None, base_label: str) -> Change:
    """Compare the model ``config_rel`` describes at ``base_sha`` and in the working tree."""
    from mlgitops.config.loader import parse_config
    from mlgitops.errors import ConfigError
    from mlgitops.gitrepo import GitTree, Prefixed, WorkTree
    from mlgitops.plan.decide import _side, plan_candidate

    head = plan_candidate(cfg, root)  # a missing data file raises here, with its position
    if base_sha is None:
        return Change(True, "no base commit to compare with", head.key)
    tree = GitTree(root, base_sha)
    raw = tree.read_bytes(config_rel)
    if raw is None:
        return Change(True, f"new: `{base_label}` has no {config_rel}", head.key)
    try:
        base_cfg = parse_config(raw.decode("utf-8", "replace"), root / config_rel, f"{config_rel}@{base_label}")
    except ConfigError:
        return Change(True, f"{config_rel} on `{base_label}` is invalid", head.key)
    parent = Path(config_rel).parent.as_posix()
    base: Any = _side(base_cfg, Prefixed(tree, "" if parent == "." else parent), WorkTree(cfg.root), f"`{base_label}`")
    if isinstance(base, str):
        return Change(True, base, head.key)
    if base.key != head.key:
        moved = [what for what, a, b in (("data", base.data_sha, head.data_sha), ("code", base.code_sha, head.code_sha)) if a != b]
        return Change(True, f"model key changed ({', '.join(moved) or 'training spec, holdout or libraries'})", head.key)
    if fingerprint(base_cfg, base.key) != fingerprint(cfg, head.key):
        return Change(True, f"{config_rel} changed", head.key)
    return Change(False, f"unchanged since `{base_label}` (model key {head.key[:12]}, same {config_rel})", head.key)
