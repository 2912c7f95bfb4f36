"""The data errors `mlops run` (pandas) and `mlops validate` (no pandas) share.

One place for each rule and its words, so both commands always say the same thing.
"""

from __future__ import annotations

from pathlib import Path

from .config import LoadedConfig
from .errors import DataError

PATH_HINT = "check the path (relative to the folder holding mlops.yaml), or commit / fetch the data first"


def missing_file(cfg: LoadedConfig, key: tuple[str, ...], rel: str, path: Path) -> DataError:
    return DataError(f"{cfg.where(*key)}: {'.'.join(key)}: file {rel!r} not found (looked for {path})", hint=PATH_HINT)


def empty_file(cfg: LoadedConfig, key: tuple[str, ...], rel: str) -> DataError:
    return DataError(f"{cfg.where(*key)}: {'.'.join(key)}: {rel} is empty (0 bytes of data)", hint="point data.path at a file with a header row and data rows")


def no_rows(cfg: LoadedConfig, key: tuple[str, ...], rel: str) -> DataError:
    return DataError(f"{cfg.where(*key)}: {'.'.join(key)}: {rel} has a header but no rows", hint="add data rows, or point data.path at the right file")


def unreadable(cfg: LoadedConfig, key: tuple[str, ...], rel: str, kind: str, why: str, hint: str | None = None) -> DataError:
    return DataError(f"{cfg.where(*key)}: {'.'.join(key)}: cannot read {rel} as {kind}: {why}", hint=hint or f"check that the file really is {kind}, or set data.format")


def too_few_rows(cfg: LoadedConfig, rel: str, rows: int) -> DataError:
    return DataError(f"{cfg.where('data', 'path')}: data.path: {rel} has {rows} usable row(s); at least 2 are needed to train and evaluate")


def feature_columns(cfg: LoadedConfig, cols: list[str], source: str) -> list[str]:
    """The feature columns, after checking the target and the listed features exist."""
    data = cfg.config.data
    if data.target not in cols:
        shown = ", ".join(cols[:20]) + (" ..." if len(cols) > 20 else "")
        raise DataError(f"{cfg.where('data', 'target')}: data.target: column {data.target!r} not found in {source} (columns: {shown})", hint="set data.target to the column you want to predict")
    features = list(data.features) if data.features is not None else [c for c in cols if c != data.target]
    missing = [f for f in features if f not in cols]
    if missing:
        raise DataError(f"{cfg.where('data', 'features')}: data.features: column(s) {', '.join(map(repr, missing))} not found in {source}", hint="fix the names under data.features, or remove the list to use every column but the target")
    if not features:
        raise DataError(f"{cfg.where('data', 'path')}: data.path: {source} has no feature columns besides the target")
    return features


def positive_label_error(cfg: LoadedConfig, positive: object, classes: list[object]) -> DataError:
    shown = ", ".join(map(repr, classes[:10]))
    return DataError(f"{cfg.where('data', 'positive_label')}: data.positive_label: {positive!r} is not a class of {cfg.config.data.target!r} (classes: {shown})", hint="use one of the target's values")
