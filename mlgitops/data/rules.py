"""The data errors `mlops run` (pandas) and `mlops validate` (no pandas) share.

One place for each rule and its words, so both commands always say the same thing.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from mlgitops.config.loader import LoadedConfig
from mlgitops.errors import DataError
from mlgitops.config.repopaths import HINT as OUTSIDE_HINT, escape, repository_root, shown

SHOWN_VALUE_CHARS = 40  # a value read from the data is shown cut to this (it may be anything)
SHOWN_CLASSES = 10
_ROW_ECHO = re.compile(r"^(CSV parse error: Expected \d+ columns?, got \d+)(?:: .*)?$", re.S)
_QUOTED = re.compile(r"'([^']{%d})[^']+'" % SHOWN_VALUE_CHARS)

PATH_HINT = "check the path (relative to the folder holding mlops.yaml), or commit / fetch the data first"


def data_file(cfg: LoadedConfig, key: tuple[str, ...], rel: str, read_root: Path) -> Path:
    """The file ``rel`` names under ``read_root``; one that resolves outside the
    repository (absolute, ``..``, a symlink) is refused before it is opened. The
    config check said so already; this holds at read time too, e.g. for a symlink
    committed at the base ref and checked out in its worktree (issue 11)."""
    roots = sorted({repository_root(read_root), repository_root(cfg.root)})
    why = escape(rel, read_root, roots)
    if why is not None:
        raise DataError(f"{cfg.where(*key)}: {'.'.join(key)}: {shown(rel)} is outside the repository ({why})", hint=OUTSIDE_HINT)
    return Path(rel) if Path(rel).is_absolute() else read_root / rel


def reason(exc: BaseException) -> str:
    """Why a parser gave up, without quoting the file: pyarrow appends the offending
    row ("Expected 3 columns, got 5: <the row>"), which may hold anything."""
    text = str(exc).strip()
    text = text.splitlines()[0] if text else type(exc).__name__
    row = _ROW_ECHO.match(text)
    if row:
        text = row.group(1)
    text = _QUOTED.sub(lambda m: f"'{m.group(1)}...'", text)
    return text if len(text) <= 200 else text[:200] + "..."


def cut(text: str) -> str:
    """Text read from the data, cut to :data:`SHOWN_VALUE_CHARS` for a message."""
    return text if len(text) <= SHOWN_VALUE_CHARS else text[:SHOWN_VALUE_CHARS] + "..."


def value(v: Any) -> str:
    """A value read from the data, for a message: repr'd (strings) and cut."""
    return cut(repr(v) if isinstance(v, str) else str(v))


def counts_text(counts: dict[Any, int]) -> str:
    """``'no': 80, 'yes': 1`` (largest first, at most :data:`SHOWN_CLASSES`)."""
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    text = ", ".join(f"{value(k)}: {n}" for k, n in ordered[:SHOWN_CLASSES])
    return text + (f", ... ({len(counts)} classes)" if len(counts) > SHOWN_CLASSES else "")


def class_problem(cfg: LoadedConfig, counts: dict[Any, int], stratify: bool) -> DataError | None:
    """Why the target's classes cannot be trained on or split, or None.

    One class makes no classifier (ONNX Runtime aborted the whole process on one,
    exit 134); a stratified split needs two rows of every class and a row of each on
    both sides (scikit-learn's rules). Decided before training, by `validate` and `run`.
    """
    data = cfg.config.data
    where = cfg.where("data", "target")
    shown_counts = counts_text(counts)
    if len(counts) == 1:  # none at all is too_few_rows' case
        (label, rows), = counts.items()
        return DataError(
            f"{where}: data.target: {data.target!r} has a single class, {value(label)}, in all {rows} rows; a classifier needs at least two",
            hint="check that data.target names the column to predict and that the data holds every class (or set task: regression for a numeric target)",
        )
    if not stratify or not counts:
        return None
    single = [k for k, n in counts.items() if n < 2]
    if single:
        return DataError(
            f"{where}: data.target: {len(single)} class(es) of {data.target!r} have a single row, too few for a stratified holdout split (rows per class: {shown_counts})",
            hint="add rows of those classes or drop them, or set data.holdout.stratify: false",
        )
    rows, size = sum(counts.values()), data.holdout.size
    holdout = math.ceil(size * rows)  # scikit-learn's rounding
    if holdout < len(counts) or rows - holdout < len(counts):
        return DataError(
            f"{cfg.where('data', 'holdout', 'size')}: data.holdout.size: a stratified split of {rows} rows into {rows - holdout} training and {holdout} holdout rows "
            f"cannot hold each of the {len(counts)} classes of {data.target!r} on both sides (rows per class: {shown_counts})",
            hint=f"use more rows, or a holdout.size that leaves at least {len(counts)} rows on each side",
        )
    return None


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
        names = ", ".join(cut(str(c)) for c in cols[:20]) + (" ..." if len(cols) > 20 else "")
        raise DataError(f"{cfg.where('data', 'target')}: data.target: column {data.target!r} not found in {source} (columns: {names})", hint="set data.target to the column you want to predict")
    features = list(data.features) if data.features is not None else [c for c in cols if c != data.target]
    missing = [f for f in features if f not in cols]
    if missing:
        raise DataError(f"{cfg.where('data', 'features')}: data.features: column(s) {', '.join(map(repr, missing))} not found in {source}", hint="fix the names under data.features, or remove the list to use every column but the target")
    if not features:
        raise DataError(f"{cfg.where('data', 'path')}: data.path: {source} has no feature columns besides the target")
    return features


def positive_label_error(cfg: LoadedConfig, positive: object, classes: list[object]) -> DataError:
    names = ", ".join(map(value, classes[:SHOWN_CLASSES])) + (" ..." if len(classes) > SHOWN_CLASSES else "")
    return DataError(f"{cfg.where('data', 'positive_label')}: data.positive_label: {positive!r} is not a class of {cfg.config.data.target!r} (classes: {names})", hint="use one of the target's values")
