"""`mlops validate`'s data check, without pandas or scikit-learn.

pandas and scikit-learn cost 0.8 s and 1.6 s to import on a small runner; the check
that a file parses, holds the target and features, and has rows needs neither: the
header is read with the csv module and the target column with pyarrow's CSV reader,
so `mlops validate` stays under a second on the example (bench/RESULTS.md).
`mlops run` loads the same data with pandas and reports problems with the same words.
"""

from __future__ import annotations

import csv
import importlib.util
import math
from dataclasses import dataclass, field
from pathlib import Path

from mlgitops.data import rules
from mlgitops.config.loader import LoadedConfig
from mlgitops.errors import DataError, TrainingError

MAX_CLASSES_FOR_INFERENCE = 20  # same rule as data.infer_task

# name -> (file under sklearn/datasets/data, rows, features, task, classes)
BUNDLED = {
    "breast_cancer": ("breast_cancer.csv", 569, 30, "classification", 2),
    "iris": ("iris.csv", 150, 4, "classification", 3),
    "wine": ("wine_data.csv", 178, 13, "classification", 3),
    "diabetes": ("diabetes_data_raw.csv.gz", 442, 10, "regression", 0),
    "digits": ("digits.csv.gz", 1797, 64, "classification", 10),
}


@dataclass
class DataSummary:
    rows: int
    train_rows: int
    holdout_rows: int
    features: list[str]
    target: str
    task: str
    task_reason: str
    notes: list[str] = field(default_factory=list)


def _package_dir(name: str) -> Path | None:
    """Folder of a top-level package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _same_number(value: object, text: str) -> bool:
    try:
        return float(text) == float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _infer(values: list[str]) -> tuple[str, str]:
    distinct = set(values)
    try:
        numbers = {float(v) for v in distinct}
    except ValueError:
        return "classification", f"target is object with {len(distinct)} classes"
    if all(n == int(n) for n in numbers if math.isfinite(n)) and len(numbers) <= MAX_CLASSES_FOR_INFERENCE:
        return "classification", f"target has {len(numbers)} distinct whole-number values"
    return "regression", f"target is numeric with {len(numbers)} distinct values"


def _class_counts(values: list[str]) -> dict[object, int]:
    """Rows per class; numbers count as numbers ("1" and "1.0" are one class, as
    pandas reads them) and show as numbers, as `mlops run` shows them."""
    counts: dict[object, int] = {}
    for text in values:
        try:
            number = float(text)
            key: object = int(number) if number.is_integer() else number
        except (ValueError, OverflowError):
            key = text
        counts[key] = counts.get(key, 0) + 1
    return counts


def _read_csv(cfg: LoadedConfig, rel: str, key: tuple[str, ...], column: str | None = None) -> tuple[list[str], list[str | None], int]:
    """(header, values of ``column`` or [], row count). pyarrow's C++ parser reads a
    million rows in well under a second where the csv module needs eight."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = rules.data_file(cfg, key, rel, cfg.root)
    if not path.is_file():
        raise rules.missing_file(cfg, key, rel, path)
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    if not head.strip():
        raise rules.empty_file(cfg, key, rel)
    try:
        first = head.decode("utf-8-sig").splitlines()[0] if b"\n" in head or len(head) < (1 << 16) else None
        header = next(csv.reader([first])) if first is not None else None
    except (UnicodeDecodeError, csv.Error, StopIteration) as exc:
        raise rules.unreadable(cfg, key, rel, "csv", rules.reason(exc)) from None
    if header is None:
        raise rules.unreadable(cfg, key, rel, "csv", "the header line is longer than 64 KiB")
    include = [column] if column in header else []
    try:
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(include_columns=include, column_types={c: pa.string() for c in include}, strings_can_be_null=True),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise rules.unreadable(cfg, key, rel, "csv", rules.reason(exc), hint="check the delimiter and quoting of that line") from None
    if table.num_rows == 0:
        raise rules.no_rows(cfg, key, rel)
    values = table.column(0).to_pylist() if include else []
    return header, values, table.num_rows


def check_estimator(cfg: LoadedConfig) -> None:
    """The estimator's module file exists and names the class (no import)."""
    path = cfg.config.training.estimator
    if not path:
        return
    module, _, attr = path.rpartition(".")
    top, *rest = module.split(".")
    where = cfg.where("training", "estimator")
    base = _package_dir(top)
    if base is None:
        if importlib.util.find_spec(top) is not None and not rest:
            return  # a single-module package: defer to `mlops run`
        raise TrainingError(f"{where}: training.estimator: cannot import module {module!r} (No module named {top!r})", hint="install the package that provides it, or fix the import path")
    folder = base.joinpath(*rest)
    source = folder / "__init__.py" if folder.is_dir() else folder.with_suffix(".py")
    if not source.is_file():
        raise TrainingError(f"{where}: training.estimator: cannot import module {module!r} (no {source.relative_to(base.parent)})", hint="install the package that provides it, or fix the import path")
    if attr not in source.read_text(encoding="utf-8", errors="replace"):
        raise TrainingError(f"{where}: training.estimator: module {module!r} has no {attr!r}", hint="check the spelling, e.g. sklearn.ensemble.RandomForestClassifier")


def check_data(cfg: LoadedConfig) -> DataSummary:
    data = cfg.config.data
    notes: list[str] = []
    if data.path.startswith("sklearn:"):
        name = data.path.split(":", 1)[1]
        file, rows, n_features, task, classes = BUNDLED[name]
        base = _package_dir("sklearn")
        if base is None or not (base / "datasets" / "data" / file).is_file():
            raise DataError(f"{cfg.where('data', 'path')}: data.path: scikit-learn's bundled {name} data is not installed")
        features = [f"feature_{i}" for i in range(n_features)]  # names only known after loading
        if data.target != "target":
            raise DataError(f"{cfg.where('data', 'target')}: data.target: bundled datasets name their target column 'target', got {data.target!r}", hint="set data.target: target")
        reason = f"target has {classes} distinct whole-number values" if task == "classification" else "target is numeric"
        if data.features is not None:
            features = list(data.features)
    else:
        fmt = data.format or ("parquet" if Path(data.path).suffix.lower() in (".parquet", ".pq") else "csv")
        if fmt == "parquet":
            import pyarrow.parquet as pq

            path = rules.data_file(cfg, ("data", "path"), data.path, cfg.root)
            if not path.is_file():
                raise rules.missing_file(cfg, ("data", "path"), data.path, path)
            try:
                meta = pq.read_metadata(path)
            except Exception as exc:  # pyarrow raises several types for a bad file
                raise rules.unreadable(cfg, ("data", "path"), data.path, "parquet", rules.reason(exc)) from None
            cols = [meta.schema.column(i).name for i in range(meta.num_columns)]
            features = rules.feature_columns(cfg, cols, data.path)
            rows = meta.num_rows
            if rows == 0:
                raise rules.no_rows(cfg, ("data", "path"), data.path)
            target_values = [str(v) for v in pq.read_table(path, columns=[data.target]).column(0).to_pylist() if v is not None]
        else:
            header, values, rows = _read_csv(cfg, data.path, ("data", "path"), data.target)
            features = rules.feature_columns(cfg, header, data.path)
            target_values = [v for v in values if v is not None]
        if len(target_values) < rows:
            notes.append(f"dropped {rows - len(target_values)} row(s) with no {data.target!r} value")
            rows = len(target_values)
        if rows < 2:
            raise rules.too_few_rows(cfg, data.path, rows)
        if cfg.config.task:
            task, reason = cfg.config.task, "set in mlops.yaml"
        else:
            task, reason = _infer(target_values)
        positive = data.positive_label
        if positive is not None and task == "classification":
            classes = sorted(set(target_values))
            if str(positive) not in classes and not any(_same_number(positive, c) for c in classes):
                raise rules.positive_label_error(cfg, positive, list(classes))
        if task == "classification":
            stratify = data.holdout.path is None and data.holdout.kind == "random" and (data.holdout.stratify if data.holdout.stratify is not None else True)
            problem = rules.class_problem(cfg, _class_counts(target_values), stratify)
            if problem is not None:
                raise problem
    if cfg.config.task:
        task, reason = cfg.config.task, "set in mlops.yaml"
    else:
        reason = f"inferred: {reason}"
    cfg.check_task(task)  # e.g. rmse gated on a classifier: the same words as `mlops run`
    if data.holdout.path:
        if Path(data.holdout.path).suffix.lower() in (".parquet", ".pq") or data.format == "parquet":
            import pyarrow.parquet as pq

            hpath = rules.data_file(cfg, ("data", "holdout", "path"), data.holdout.path, cfg.root)
            if not hpath.is_file():
                raise rules.missing_file(cfg, ("data", "holdout", "path"), data.holdout.path, hpath)
            holdout_rows = pq.read_metadata(hpath).num_rows
        else:
            holdout_rows = _read_csv(cfg, data.holdout.path, ("data", "holdout", "path"))[2]
        train_rows = rows
    elif data.holdout.kind == "hash":
        # The hash split's counts are known only by hashing the rows: load them (pandas),
        # which also checks the key column with the run's words.
        from mlgitops.data.load import load_dataset

        dataset = load_dataset(cfg)
        holdout_rows, train_rows = len(dataset.holdout), len(dataset.train)
    else:
        holdout_rows = math.ceil(data.holdout.size * rows)  # train_test_split's rounding
        train_rows = rows - holdout_rows
    return DataSummary(rows, train_rows, holdout_rows, features, data.target, task, reason, notes)


def validate_config(repo: str | None, config: str | None) -> list[str]:
    """`mlops validate`'s lines: the config loads, its data loads with the target, the
    estimator imports; each problem raises with file:line:col. Works outside git too."""
    from pathlib import Path

    from mlgitops.config.loader import load_config
    from mlgitops.config.locate import find_config
    from mlgitops.errors import GitError

    try:
        _root, cpath, rel = find_config(repo, config)
    except GitError:  # validate also works outside a git repository
        cpath = Path(config) if config else Path(repo or ".").resolve() / "mlops.yaml"
        rel = cpath.name if not config else config
    return validate_loaded(load_config(cpath, display=rel))


def validate_loaded(cfg: LoadedConfig) -> list[str]:
    """`mlops validate`'s lines for a loaded config: its data loads, its estimator imports."""
    dataset = check_data(cfg)
    check_estimator(cfg)
    t = cfg.config.training
    how = f"estimator {t.estimator}" if t.estimator else f"command `{t.command}`"
    gates = cfg.gated_metrics()
    lines = [
        f"{cfg.display}: OK",
        f"  data: {cfg.config.data.path} -> {dataset.train_rows} training + {dataset.holdout_rows} holdout rows, {len(dataset.features)} feature(s), target {dataset.target!r}",
        f"  task: {dataset.task} ({dataset.task_reason})",
        f"  training: {how}",
        f"  gates: {', '.join(gates) if gates else 'none'}",
    ]
    contract = cfg.config.data.contract
    if contract is not None and not cfg.config.data.path.startswith("sklearn:"):
        known = {*dataset.features, dataset.target}
        for column in contract.columns:
            if column not in known:
                dataset.notes.append(f"{cfg.where('data', 'contract', 'columns', column)}: data.contract.columns.{column}: not a column of {cfg.config.data.path}; the run's contract check will fail")
    return lines + [f"  note: {note}" for note in dataset.notes]


def validate_workspace(root: Path) -> list[str]:
    """`mlops validate` in a workspace: the workspace file, then every model as
    `validate_config` checks one; every model's problems are reported together."""
    from mlgitops.config.workspace import WORKSPACE_FILE, load_members, load_workspace
    from mlgitops.errors import ConfigError, InputError, MlopsError

    ws = load_workspace(root)
    configs = load_members(ws)  # all configs load and no two share a name, or exit 2 here
    lines = [f"{WORKSPACE_FILE}: OK ({len(configs)} model(s): {', '.join(c.config.name for c in configs)})"]
    failed: list[MlopsError] = []
    for cfg in configs:
        try:
            lines += validate_loaded(cfg)
        except InputError as exc:
            failed.append(exc)
    if failed:
        problems = [p for exc in failed for p in (exc.problems if isinstance(exc, ConfigError) else [exc.message])]
        hint = next((exc.hint for exc in failed if exc.hint), None)
        raise ConfigError(problems, hint=hint) if all(isinstance(e, ConfigError) for e in failed) else InputError("\n".join(problems), hint=hint)
    return lines
