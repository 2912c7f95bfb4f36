"""`mlops.yaml` v1: typed models and the one loader (STYLE.md #1).

``load_config(path)`` returns a :class:`Config` or raises :class:`ConfigError` whose
problems each read ``mlops.yaml:12:7: gates.f1.min: expected a number, got '0.9x'``.
Every model forbids unknown keys: a typo such as ``min_acuracy`` must fail, never
silently switch a gate off (STYLE.md #3).
"""

from __future__ import annotations

import difflib
import posixpath
import re
import shlex
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StrictBool, StrictInt, StrictStr, Tag, ValidationError, create_model, field_validator
from pydantic_core import PydanticCustomError

from mlgitops.errors import ConfigError
from mlgitops.train.metrics import DEFAULT_METRICS, METRICS
from mlgitops.deploy.pinfiles import key_path_problem, value_format_problem
from mlgitops.config.repopaths import ALLOW_ENV, HINT as OUTSIDE_HINT, escape, outside_problems, repository_root
from mlgitops.config.positions import Positions, YamlLimitError, YamlSyntaxError, check_size, load_with_positions

CONFIG_FILE = "mlops.yaml"
SKLEARN_DATASETS = ("breast_cancer", "iris", "wine", "diabetes", "digits")
PLACEHOLDERS = ("train", "valid", "model", "params", "target")
# {holdout} hands the training code the rows its own gates are scored on: refused
# unless training.allow_holdout opts in (issue 11).
HOLDOUT_PLACEHOLDER = "holdout"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

Number = Annotated[float, Field(strict=True)]
MetricName = Literal[tuple(METRICS)]  # type: ignore[valid-type]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Holdout(_Strict):
    """How the evaluation rows are chosen: a split of the data, or a separate file."""

    size: Number = Field(0.2, gt=0, lt=1, description="share of rows held out (0-1)")
    seed: StrictInt = Field(42, description="random seed of the split")
    stratify: Optional[StrictBool] = Field(None, description="keep class shares (default: yes for classification; a hash split cannot stratify)")
    path: Optional[StrictStr] = Field(None, description="a separate holdout file (CSV/Parquet); the split keys are then ignored")
    # A random split moves rows between training and holdout whenever rows are added or
    # removed; a hash split decides each row by itself, so unchanged rows keep their side
    # (issue 14). Random stays the default: switching changes every existing holdout.
    split: Optional[Literal["random", "hash"]] = Field(None, description="random: a seeded shuffle (stratified for classification; default without a key); hash: each row by a sha256 of its key value (data.holdout.key) or of its contents, so rows a pull request leaves unchanged stay on their side (default with a key)")
    key: Optional[StrictStr] = Field(None, description="a column identifying rows (e.g. an id): the hash split assigns rows by its value, rows sharing a value go together")

    @property
    def kind(self) -> str:
        """The split used: hash when asked for or keyed, else random."""
        return "hash" if self.split == "hash" or (self.split is None and self.key is not None) else "random"


class ColumnContract(_Strict):
    """What one column must look like (every key optional)."""

    type: Optional[Literal["number", "integer", "string", "boolean"]] = Field(None, description="the values' type")
    nullable: Optional[StrictBool] = Field(None, description="false: no missing values at all")
    max_null_share: Optional[Number] = Field(None, ge=0, le=1, description="largest share of missing values (0-1)")
    min: Optional[Number] = Field(None, description="smallest allowed value")
    max: Optional[Number] = Field(None, description="largest allowed value")
    allowed: Optional[list[Union[StrictStr, StrictInt, StrictBool]]] = Field(None, description="the only values allowed (missing values aside)")


class RowBounds(_Strict):
    min: Optional[StrictInt] = Field(None, ge=0, description="fewest rows")
    max: Optional[StrictInt] = Field(None, ge=0, description="most rows")


class Contract(_Strict):
    """Checked on the training data before training; reported as a table in the comment."""

    rows: Optional[RowBounds] = None
    columns: dict[StrictStr, ColumnContract] = Field(default_factory=dict)
    on_violation: Literal["fail", "warn"] = Field("fail", description="fail: a broken check fails the gate; warn: reported only")


class Data(_Strict):
    path: StrictStr = Field(description=f"CSV or Parquet file relative to the folder of mlops.yaml, or sklearn:<name> (breast_cancer, iris, wine, diabetes, digits). Every path in mlops.yaml (data.path, data.holdout.path, training.code, report.templates, deploy manifests, drift.reference) must resolve inside the repository, symlinks followed; an operator may lift this for trusted repositories by setting {ALLOW_ENV}=1 in the environment (mlops.yaml cannot)")
    target: StrictStr = Field(description="the column to predict")
    features: Optional[list[StrictStr]] = Field(None, description="feature columns (default: every column but the target)")
    format: Optional[Literal["csv", "parquet"]] = Field(None, description="file format (default: from the suffix)")
    positive_label: Optional[Union[StrictStr, StrictInt, StrictBool]] = Field(None, description="binary classification: the class precision, recall, f1 and roc_auc score (default: the larger label)")
    holdout: Holdout = Holdout()
    contract: Optional[Contract] = Field(None, description="what the data must look like, checked before training")


class SweepCandidate(_Strict):
    estimator: Optional[StrictStr] = Field(None, description="import path (default: training.estimator)")
    params: dict[StrictStr, Any] = Field(default_factory=dict, description="its parameters: over training.params when it keeps training.estimator; alone when it names another estimator (training.params belong to that one)")


class Sweep(_Strict):
    """Train several candidates at once; the best on a validation split is the one
    trained on all the training data, reported and gated."""

    grid: dict[StrictStr, list[Any]] = Field(default_factory=dict, description="parameter -> values; every combination, over training.params")
    candidates: list[SweepCandidate] = Field(default_factory=list, description="explicit candidates (estimator and/or params), after the grid's")
    metric: Optional[MetricName] = Field(None, description="what picks the best (default: the first gated metric, else the first reported)")
    validation_size: Number = Field(0.2, gt=0, lt=0.9, description="share of the training rows held out to compare candidates (seeded like the holdout)")
    runner: Literal["threads", "dask"] = Field("threads", description="threads: Prefect's thread pool; dask: Prefect's Dask task runner (prefect-dask)")
    workers: StrictInt = Field(2, ge=1, le=256, description="candidates trained at once (threads, or local Dask worker processes)")
    address: Optional[StrictStr] = Field(None, description="an existing Dask scheduler (tcp://HOST:8786) instead of a local cluster")
    max_candidates: StrictInt = Field(64, ge=1, le=10_000, description="refuse a sweep larger than this")


class Training(_Strict):
    """Either a declarative estimator or the user's own training command."""

    estimator: Optional[StrictStr] = Field(None, description="import path of a scikit-learn compatible estimator, e.g. sklearn.ensemble.RandomForestClassifier")
    params: dict[StrictStr, Any] = Field(default_factory=dict, description="estimator parameters, or the JSON written to {params} for a command")
    preprocessing: Literal["auto", "none"] = Field("auto", description="auto: impute numeric columns (and scale them, except for tree models), impute + one-hot encode text columns")
    command: Optional[StrictStr] = Field(None, description="training command; placeholders {train} {valid} {model} {params} {target}; it runs with an allow-listed environment (see `env`)")
    env: list[Annotated[StrictStr, Field(pattern=ENV_NAME)]] = Field(
        default_factory=list,
        description=(
            "names of environment variables the training command may see, besides a fixed allow-list (PATH, HOME, USER, locale, TZ, TMPDIR, "
            "Python's own PYTHON* settings, VIRTUAL_ENV, BLAS/OpenMP thread counts, CI, GITHUB_ACTIONS); everything else, GITHUB_TOKEN included, is withheld. "
            "The list in force is the trusted config's: the base ref's on a pull request (a change made by the PR takes effect after merge), the default "
            "branch's on a deploy. A name that looks like a credential (it contains TOKEN, SECRET, PASS, KEY, CRED, AUTH, HOOK, PRIVATE, SESSION, COOKIE, "
            "SIGNATURE or DSN) is passed only when that trusted config lists it; with no trusted config such names are withheld"
        ),
    )
    validation_size: Number = Field(0.2, gt=0, lt=0.9, description="share of the training rows written to {valid} when the command uses it (seeded like the holdout, stratified for classification); {train} then holds the rest")
    allow_holdout: StrictBool = Field(False, description="let the command read the holdout through {holdout}; the comment then warns that the training code saw the rows its gates are scored on")
    code: list[StrictStr] = Field(default_factory=list, description="files or folders whose content counts as training code (cache key, 'what changed')")
    timeout: Number = Field(3600, gt=0, description="seconds before the training command is stopped")
    sweep: Optional[Sweep] = Field(None, description="train several candidates concurrently and keep the best (estimator only)")
    repeats: StrictInt = Field(1, ge=1, le=20, description="train this many times with seeds data.holdout.seed, +1, +2, ... (random_state of the estimator, MLOPS_SEED of a command); gates use each metric's mean, the comment shows its spread; the first seed's model is the one cached, exported and deployed")


class Gate(_Strict):
    """Thresholds for one metric. Drops are measured in the metric's bad direction."""

    min: Optional[Number] = Field(None, description="candidate must be >= min")
    max: Optional[Number] = Field(None, description="candidate must be <= max")
    max_drop: Optional[Number] = Field(None, ge=0, description="largest allowed worsening vs the baseline, in metric units")
    max_drop_pct: Optional[Number] = Field(None, ge=0, description="largest allowed worsening vs the baseline, in percent of the baseline")
    tolerance: Optional[Number] = Field(None, ge=0, description="noise allowance of max_drop and max_drop_pct, in metric units: a worsening up to the allowed drop plus this passes")


Gates = create_model(  # one optional field per known metric, so unknown keys are errors
    "Gates",
    __config__=ConfigDict(extra="forbid", strict=True, frozen=True),
    **{name: (Optional[Gate], None) for name in METRICS},
)


class PinFile(_Strict):
    """One value in a deploy target's own YAML (a KServe InferenceService, a Deployment,
    Helm values) that the promotion PR rewrites, so Argo CD or Flux deploy the merge."""

    path: StrictStr = Field(description="the YAML file, where `manifest` is: in `repo` (relative to its root), else in this repository relative to mlops.yaml")
    key: StrictStr = Field(description="dotted key path of the value, e.g. spec.predictor.model.storageUri; list items by index containers[0] or by field containers[name=server]; a key with dots in quotes, annotations[\"a.b/c\"]")
    value: StrictStr = Field("{uri}", description="what is written there: text with {uri} {sha256} {version} {name} {format}, e.g. \"s3://models/{sha256}.onnx\"")
    document: Optional[Union[StrictInt, dict[StrictStr, StrictStr]]] = Field(None, description="which document of a multi-document file (`---`): an index from 0, or fields to match, e.g. {kind: Deployment} or {kind: Deployment, metadata.name: iris}; needed when the file holds several")
    annotate: Optional[StrictStr] = Field(None, description="key path of a mapping (e.g. metadata.annotations) where mlgitops.dev/model-sha256 and mlgitops.dev/model-version are set; the mapping is created when only its last key is missing")

    @field_validator("key", "annotate")
    @classmethod
    def _key_path(cls, v: Optional[str], info: Any) -> Optional[str]:
        problem = None if v is None else key_path_problem(v, mapping_at_end=info.field_name == "annotate")
        if problem:
            raise PydanticCustomError("key_path", f"expected keys separated by dots, list items as [0] or [name=value] (here: {problem})")
        return v

    @field_validator("value")
    @classmethod
    def _value(cls, v: str) -> str:
        problem = value_format_problem(v)
        if problem:
            raise PydanticCustomError("value_format", f"expected text with {{uri}}, {{sha256}}, {{version}}, {{name}} or {{format}} (here: {problem})")
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.endswith((".yaml", ".yml")):
            raise PydanticCustomError("yaml_path", "expected a .yaml or .yml file")
        return v

    @field_validator("document", mode="before")
    @classmethod
    def _document(cls, v: Any) -> Any:
        ok = v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0) or (isinstance(v, dict) and v and all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()))
        if not ok:
            raise PydanticCustomError("document", "expected a document index (0, 1, ...) or fields to match such as {kind: Deployment}")
        for k in v if isinstance(v, dict) else ():
            problem = key_path_problem(k)
            if problem:
                raise PydanticCustomError("key_path", f"expected keys separated by dots, such as metadata.name (here: {k!r}: {problem})")
        return v


class Environment(_Strict):
    manifest: StrictStr = Field(description="path of the YAML manifest that pins the deployed model (in `repo`, else in this repo, relative to mlops.yaml)")
    repo: Optional[StrictStr] = Field(None, description="the manifest lives in another repository: OWNER/NAME on GitHub, a folder path for the local forge")
    branch: Optional[StrictStr] = Field(None, description="that repository's branch promotion PRs target (default: its default branch)")
    files: list[PinFile] = Field(default_factory=list, max_length=32, description="values in the deploy target's own YAML files (next to `manifest`) that the same promotion PR rewrites, comments and formatting kept")


class Deploy(_Strict):
    baseline: Optional[StrictStr] = Field(None, description="environment whose pinned model is the PR baseline (default: the first)")
    on_merge: Optional[StrictStr] = Field(None, description="environment a merge to the default branch opens a promotion PR for (default: the first)")
    environments: dict[StrictStr, Environment] = Field(default_factory=dict)


class ParityTolerance(_Strict):
    """How closely the ONNX model must reproduce the fitted model on the holdout."""

    min_label_agreement: Number = Field(0.999, ge=0, le=1, description="classification: share of holdout rows whose label must match")
    max_proba_diff: Number = Field(0.001, ge=0, le=1, description="classification: largest allowed |probability difference| on any row")
    max_prediction_diff: Optional[Number] = Field(None, ge=0, description="regression: largest allowed |prediction difference|, in target units (default: 0.001 x the holdout target's standard deviation)")


class Export(_Strict):
    onnx: StrictBool = Field(True, description="export the model to ONNX and check parity with the fitted model")
    on_failure: Literal["fail", "warn"] = Field("fail", description="fail: a model that cannot be exported, or fails parity, fails the gate; warn: reported only")
    parity: ParityTolerance = ParityTolerance()


class DriftColumn(_Strict):
    """Limits of one compared column. Evidently picks each column's test from the data
    (below 1,000 rows K-S / chi-square p-values, where LOWER means drift; above, a
    distance such as Wasserstein or Jensen-Shannon, where HIGHER means drift), so a
    column may carry a limit for each kind: the one matching the test used applies."""

    max_score: Optional[Number] = Field(None, ge=0, description="gate: the largest drift score allowed when Evidently measures this column with a distance (Wasserstein, Jensen-Shannon, ...; higher means more drift); the gate fails above it. A column tested with a p-value is held to min_p_value instead (without one, this limit fails, saying so)")
    min_p_value: Optional[Number] = Field(None, ge=0, le=1, description="gate: the smallest p-value allowed when Evidently tests this column with a statistical test (K-S, chi-square, Z-test; lower means more drift); the gate fails below it. A column measured with a distance is held to max_score instead (without one, this limit fails, saying so)")


# A list of names or a mapping of names to limits. Tagged by the value's own type, so
# a bad value gets the message of its form only, not one per member of the union; the
# tags are dropped from error locations (_format_error).
_UNION_TAGS = ("<list>", "<mapping>")
DriftColumns = Annotated[
    Union[Annotated[list[StrictStr], Tag(_UNION_TAGS[0])], Annotated[dict[StrictStr, DriftColumn], Tag(_UNION_TAGS[1])]],
    Discriminator(lambda v: _UNION_TAGS[0] if isinstance(v, list) else _UNION_TAGS[1]),
]


class Drift(_Strict):
    """Drift of the PR's training data against a reference, with Evidently."""

    reference: StrictStr = Field("deployed", description="deployed: the deployed model's training data (via its lineage), else the base ref's; base: the base ref's; or a CSV/Parquet path")
    columns: Optional[DriftColumns] = Field(None, description="columns to compare (default: the features): a list of names, or a mapping of names to per-column limits, e.g. {income: {max_score: 0.2}}")
    sample: StrictInt = Field(50_000, ge=0, description="rows sampled from each side (seeded) before comparing; 0: all rows")
    seed: StrictInt = Field(0, description="seed of the sample")
    max_drifted_share: Optional[Number] = Field(None, ge=0, le=1, description="gate: largest share of drifted columns (0-1)")
    max_drifted_columns: Optional[StrictInt] = Field(None, ge=0, description="gate: largest number of drifted columns (0: none may drift)")

    @field_validator("columns", mode="before")
    @classmethod
    def _columns(cls, v: Any) -> Any:
        if v is not None and not isinstance(v, (list, dict)):
            raise PydanticCustomError("drift_columns", "expected a list of column names or a mapping of column names to limits ({max_score: ...})")
        return v


class Alerts(_Strict):
    """A Slack-compatible webhook for gate failures, drift and failed runs."""

    webhook_env: Optional[StrictStr] = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="name of the environment variable holding the webhook URL (a secret: never put the URL in this file)")
    on: list[Literal["gate_failure", "drift", "run_failure"]] = Field(default_factory=lambda: ["gate_failure", "drift", "run_failure"], description="which events alert")
    retries: StrictInt = Field(3, ge=0, le=10, description="retries on connection errors, 429 and 5xx")
    timeout: Number = Field(10, gt=0, le=60, description="seconds per attempt")


class Registry(_Strict):
    path: StrictStr = Field(".mlops/registry", description="folder of the model registry (relative to mlops.yaml, or absolute, e.g. a shared volume); ignored when `url` is set")
    url: Optional[StrictStr] = Field(None, description="a registry that outlives the runner: s3://BUCKET/PREFIX, gs://..., az://... (fsspec; credentials from the SDK's usual chain, never this file) or oci://HOST/OWNER/REPO/PATH (ORAS; e.g. oci://ghcr.io/OWNER/REPO/models with the job's GITHUB_TOKEN)")
    candidates_max_age_days: Number = Field(30, gt=0, description="`mlops gc` removes pull-request candidates older than this (registered versions are kept)")


class Report(_Strict):
    templates: Optional[StrictStr] = Field(None, description="folder with templates that override the built-in ones")
    charts: StrictBool = Field(True, description="Mermaid charts in the PR comment (GitHub draws them; no image host): each gated metric over the last deployed versions and the candidate, and for binary classifiers the ROC curves of baseline and candidate on the same holdout; false: none")


class MlflowTracking(_Strict):
    """Log each pull request's runs to MLflow and keep its Model Registry in step with the deploy manifests (needs the `mlflow` extra)."""

    experiment: StrictStr = Field(min_length=1, description="the MLflow experiment the pull-request runs are logged to (created when missing); the server is MLFLOW_TRACKING_URI and its credentials MLflow's usual MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN, from the environment, never this file")
    required: StrictBool = Field(False, description="true: a tracking server that is unset, down or refuses the run fails the gate; false: the comment says so and the gate is unaffected")


class Tracking(_Strict):
    mlflow: Optional[MlflowTracking] = Field(None, description="MLflow tracking and Model Registry; off when absent")


class Config(_Strict):
    version: Literal[1] = 1
    name: StrictStr = Field("model", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="model name, used in comments and artifacts")
    task: Optional[Literal["classification", "regression"]] = Field(None, description="default: inferred from the target column")
    data: Data
    training: Training
    metrics: Optional[list[MetricName]] = Field(None, description="metrics to report (default: all for the task)")
    gates: Gates = Gates()  # type: ignore[valid-type]
    drift: Optional[Drift] = Field(None, description="compare the training data with a reference (Evidently); off when absent")
    export: Export = Export()
    registry: Registry = Registry()
    alerts: Alerts = Alerts()
    deploy: Deploy = Deploy()
    report: Report = Report()
    tracking: Tracking = Tracking()


class LoadedConfig:
    """A validated config plus where it came from (for error messages)."""

    def __init__(self, config: Config, path: Path, positions: Positions, display: str) -> None:
        self.config = config
        self.path = path
        self.root = path.parent
        self.positions = positions
        self.display = display

    def where(self, *keys: Any) -> str:
        line, col = self.positions.value(keys)
        return f"{self.display}:{line}:{col}"

    def check_task(self, task: str) -> None:
        """Refuse gates/metrics that do not apply to the (inferred) task, with positions.
        A task set by `task:` was already checked when the file was loaded."""
        if self.config.task is not None:
            return
        found = task_mismatches(self.config, task, f"inferred from the target column {self.config.data.target!r}")
        if found:
            raise ConfigError(_by_position([f"{self.where(*p)}: {_dotted(p)}: {m}" for p, m in found]), hint=task_metric_hint(task, inferred=True))

    def metric_names(self, task: str) -> list[str]:
        self.check_task(task)  # before any training: a metric that cannot apply is a config error
        names = list(self.config.metrics or DEFAULT_METRICS[task])
        for gated in self.gated_metrics():  # a gated metric is always computed
            if gated not in names:
                names.append(gated)
        return names

    def gated_metrics(self) -> dict[str, Gate]:
        return {k: v for k, v in self.config.gates if v is not None}


def json_schema() -> dict[str, Any]:
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mlops.yaml"
    return schema


def load_config(path: str | Path, display: str | None = None) -> LoadedConfig:
    """Read and validate ``path``. Raises :class:`ConfigError` listing every problem."""
    path = Path(path)
    shown = display or (path.name if path.name == CONFIG_FILE else str(path))
    why = escape(path.name, path.parent, [repository_root(path.parent)])
    if why is not None:  # a committed mlops.yaml symlinked to a file elsewhere would be echoed in errors
        raise ConfigError([f"{shown}:1:1: the config file itself is outside the repository ({why})"], hint=OUTSIDE_HINT)
    try:
        check_size(path.stat().st_size)  # a 50 MB file is refused before it is read
        text = path.read_text(encoding="utf-8")
    except YamlLimitError as exc:
        raise ConfigError([f"{shown}:{exc.line}:{exc.column}: {exc.problem}"], hint=exc.hint) from None
    except FileNotFoundError:
        if path.name == CONFIG_FILE and (path.parent / "mlops-workspace.yaml").is_file():  # a command that acts on one model, in a workspace
            raise ConfigError([f"{shown}: file not found"], hint="this repository lists its models in mlops-workspace.yaml: name one with --config, e.g. --config models/NAME/mlops.yaml") from None
        raise ConfigError([f"{shown}: file not found"], hint="create mlops.yaml at the repository root (docs/configuration.md lists every key), or pass --config PATH") from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{shown}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    loaded = parse_config(text, path, shown)
    from mlgitops.forges import alerts

    alerts.configure(loaded)  # failures after this point can alert
    return loaded


def parse_config(text: str, path: Path, display: str) -> LoadedConfig:
    try:
        data, positions = load_with_positions(text)
    except YamlLimitError as exc:  # alias bomb, deep nesting, oversize: refused while composing
        raise ConfigError([f"{display}:{exc.line}:{exc.column}: {exc.problem}"], hint=exc.hint) from None
    except YamlSyntaxError as exc:
        raise ConfigError(
            [f"{display}:{exc.line}:{exc.column}: invalid YAML: {exc.problem}"],
            hint="check the indentation and that every `key: value` has a space after the colon",
        ) from None
    problems: list[str] = []
    for dup_path, (line, col) in positions.duplicates:
        problems.append(f"{display}:{line}:{col}: {_dotted(dup_path)}: duplicate key (the earlier one would be ignored)")
    if data is None:
        raise ConfigError([f"{display}:1:1: the file is empty"], hint="see `mlops schema` or docs/configuration.md for the keys")
    if not isinstance(data, dict):
        raise ConfigError([f"{display}:1:1: expected a mapping of keys (data, training, ...), got {type(data).__name__}"])
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            problems.append(_format_error(err, positions, display))
        raise ConfigError(_by_position(problems), hint=_hint_for(exc)) from None
    loaded = LoadedConfig(config, path, positions, display)
    semantic = _semantic_problems(config)
    problems += [f"{loaded.where(*p)}: {_dotted(p)}: {m}" for p, m in semantic]
    outside = [f"{loaded.where(*p)}: {_dotted(p)}: {m}" for p, m in outside_problems(config, path.parent)]
    if problems or outside:
        mismatch = config.task is not None and bool(task_mismatches(config, config.task, ""))
        raise ConfigError(_by_position(problems + outside), hint=OUTSIDE_HINT if outside else (task_metric_hint(config.task, inferred=False) if mismatch else None))
    return loaded


def sweep_size(sweep: Sweep) -> int:
    size = 1 if sweep.grid else 0
    for values in sweep.grid.values():
        size *= max(len(values), 1)
    return size + len(sweep.candidates)


def _by_position(problems: list[str]) -> list[str]:
    def key(p: str) -> tuple[int, int]:
        m = re.match(r"[^:]*:(\d+):(\d+):", p)
        return (int(m.group(1)), int(m.group(2))) if m else (0, 0)

    return sorted(problems, key=key)


def _semantic_problems(cfg: Config) -> list[tuple[tuple[Any, ...], str]]:
    """Checks that need more than one field at a time."""
    out: list[tuple[tuple[Any, ...], str]] = []
    src = cfg.data.path
    if src.startswith("sklearn:") and src.split(":", 1)[1] not in SKLEARN_DATASETS:
        out.append((("data", "path"), f"unknown bundled dataset {src!r}; expected one of " + ", ".join(f"sklearn:{n}" for n in SKLEARN_DATASETS)))
    elif not src.startswith("sklearn:") and cfg.data.format is None and Path(src).suffix.lower() not in (".csv", ".parquet", ".pq"):
        out.append((("data", "path"), f"cannot tell the format of {src!r} from its suffix; expected .csv or .parquet, or set data.format"))
    if cfg.data.features is not None and cfg.data.target in cfg.data.features:
        out.append((("data", "features"), f"the target {cfg.data.target!r} is also listed as a feature"))
    h = cfg.data.holdout
    if h.key is not None and h.split == "random":
        out.append((("data", "holdout", "split"), "data.holdout.key is used by the hash split only; remove `split: random` or the key"))
    if h.key is not None and h.key == cfg.data.target:
        out.append((("data", "holdout", "key"), f"the target {cfg.data.target!r} cannot be the key: every row of a class would land on one side"))
    if h.kind == "hash" and h.stratify:
        out.append((("data", "holdout", "stratify"), "a hash split assigns each row by itself and cannot stratify; remove `stratify` or use `split: random`"))
    t = cfg.training
    if (t.estimator is None) == (t.command is None):
        out.append((("training",), "expected exactly one of `estimator` or `command`"))
    if t.sweep is not None:
        s = t.sweep
        if t.command is not None:
            out.append((("training", "sweep"), "a sweep needs `training.estimator`; a training command cannot be varied"))
        if not s.grid and not s.candidates:
            out.append((("training", "sweep"), "expected `grid` and/or `candidates`"))
        for name, values in s.grid.items():
            if not values:
                out.append((("training", "sweep", "grid", name), "expected at least one value"))
        for i, c in enumerate(s.candidates):
            if c.estimator is not None and not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+", c.estimator):
                out.append((("training", "sweep", "candidates", i, "estimator"), f"expected an import path such as sklearn.svm.SVC, got {c.estimator!r}"))
        count = sweep_size(s)
        if count > s.max_candidates:
            out.append((("training", "sweep"), f"{count} candidates is more than max_candidates ({s.max_candidates})"))
        if s.runner != "dask" and s.address is not None:
            out.append((("training", "sweep", "address"), "a Dask scheduler address needs `runner: dask`"))
    if t.estimator is not None and not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+", t.estimator):
        out.append((("training", "estimator"), f"expected an import path such as sklearn.ensemble.RandomForestClassifier, got {t.estimator!r}"))
    if t.command is not None:
        try:
            shlex.split(t.command)
        except ValueError as exc:
            out.append((("training", "command"), f"cannot split the command into words: {exc}"))
        used = _PLACEHOLDER_RE.findall(t.command)
        unknown = [u for u in used if u not in PLACEHOLDERS and u != HOLDOUT_PLACEHOLDER]
        if unknown:
            out.append((("training", "command"), f"unknown placeholder {{{unknown[0]}}}; expected one of " + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)))
        for needed in ("train", "model"):
            if needed not in used:
                out.append((("training", "command"), f"the command must contain {{{needed}}}, where the tool puts the {'training data CSV' if needed == 'train' else 'path to write the joblib model to'}"))
        if HOLDOUT_PLACEHOLDER in used and not t.allow_holdout:
            out.append(
                (
                    ("training", "command"),
                    "{holdout} would hand the training code the rows its gates are scored on; use {valid} (a seeded share of the training rows, "
                    "training.validation_size) instead, or set training.allow_holdout: true to accept it (the PR comment will then say so)",
                )
            )
    for metric_name, gate in cfg.gates:
        if gate is None:
            continue
        spec = METRICS[metric_name]
        if gate.min is None and gate.max is None and gate.max_drop is None and gate.max_drop_pct is None:
            out.append((("gates", metric_name), "expected at least one of min, max, max_drop, max_drop_pct"))
        if gate.tolerance is not None and gate.max_drop is None and gate.max_drop_pct is None:
            out.append((("gates", metric_name, "tolerance"), "tolerance widens max_drop or max_drop_pct; set one of them"))
        for bound in ("min", "max"):
            value = getattr(gate, bound)
            if value is not None and spec.bounded_01 and not 0 <= value <= 1:
                out.append((("gates", metric_name, bound), f"expected a number in [0, 1], got {value:g}"))
        if gate.min is not None and gate.max is not None and gate.min > gate.max:
            out.append((("gates", metric_name), f"min ({gate.min}) is greater than max ({gate.max}); no model can pass"))
    if cfg.task is not None:
        out += task_mismatches(cfg, cfg.task, "set by `task:`")
    contract = cfg.data.contract
    if contract is not None:
        if contract.rows is not None and contract.rows.min is not None and contract.rows.max is not None and contract.rows.min > contract.rows.max:
            out.append((("data", "contract", "rows"), f"min ({contract.rows.min}) is greater than max ({contract.rows.max}); no data can pass"))
        if cfg.data.features is not None:
            for column in contract.columns:
                if column not in cfg.data.features and column != cfg.data.target:
                    out.append((("data", "contract", "columns", column), f"{column!r} is neither a feature (data.features) nor the target"))
        for column, spec in contract.columns.items():
            where = ("data", "contract", "columns", column)
            if spec.min is not None and spec.max is not None and spec.min > spec.max:
                out.append((where, f"min ({spec.min:g}) is greater than max ({spec.max:g}); no value can pass"))
            if spec.nullable is False and spec.max_null_share:
                out.append((where, "nullable: false allows no missing values; drop max_null_share or the nullable line"))
            if spec.allowed is not None and not spec.allowed:
                out.append((where + ("allowed",), "an empty list allows nothing; list the allowed values or drop the key"))
            if spec.type in ("string", "boolean") and (spec.min is not None or spec.max is not None):
                out.append((where, f"min/max apply to numbers, but the type is {spec.type}"))
    if cfg.drift is not None and cfg.drift.columns is not None:
        columns = cfg.drift.columns
        if not columns:
            out.append((("drift", "columns"), f"an empty {'list' if isinstance(columns, list) else 'mapping'} compares nothing; list columns or drop the key (default: the features)"))
        elif cfg.data.features is not None:
            for i, column in enumerate(columns):
                if column not in cfg.data.features and column != cfg.data.target:
                    out.append((("drift", "columns", i if isinstance(columns, list) else column), f"{column!r} is neither a feature (data.features) nor the target"))
    envs = cfg.deploy.environments
    for key in ("baseline", "on_merge"):
        value = getattr(cfg.deploy, key)
        if value is not None and value not in envs:
            out.append((("deploy", key), f"unknown environment {value!r}; expected one of: " + (", ".join(envs) or "(none defined under deploy.environments)")))
    for env_name, env in envs.items():
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", env_name):
            out.append((("deploy", "environments", env_name), f"environment names are letters, digits, '_', '.', '-'; got {env_name!r}"))
        if not env.manifest.endswith((".yaml", ".yml")):
            out.append((("deploy", "environments", env_name, "manifest"), f"expected a .yaml file, got {env.manifest!r}"))
        seen_files: dict[tuple[str, str, str], int] = {}
        for i, pin_file in enumerate(env.files):
            if posixpath.normpath(pin_file.path) == posixpath.normpath(env.manifest):
                out.append((("deploy", "environments", env_name, "files", i, "path"), "this is the environment's manifest, which the tool writes itself; name the deploy target's own file"))
            spot = (posixpath.normpath(pin_file.path), repr(pin_file.document), pin_file.key)
            if spot in seen_files:
                out.append((("deploy", "environments", env_name, "files", i, "key"), f"files[{seen_files[spot]}] already sets this key in this file"))
            seen_files.setdefault(spot, i)
    return out


def task_mismatches(cfg: Config, task: str, why: str) -> list[tuple[tuple[Any, ...], str]]:
    """Gates, reported metrics and the sweep's metric that do not apply to ``task``
    (e.g. rmse on a classifier): refused before any training, since such a gate could
    never be computed and would fail every run as "could not be computed"."""
    out: list[tuple[tuple[Any, ...], str]] = []

    def problem(name: str) -> str:
        return f"{name} is a {METRICS[name].task} metric, but the task is {task} ({why})"

    for name, gate in cfg.gates:
        if gate is not None and METRICS[name].task != task:
            out.append((("gates", name), problem(name)))
    for i, name in enumerate(cfg.metrics or []):
        if METRICS[name].task != task:
            out.append((("metrics", i), problem(name)))
    sweep = cfg.training.sweep
    if sweep is not None and sweep.metric is not None and METRICS[sweep.metric].task != task:
        out.append((("training", "sweep", "metric"), problem(sweep.metric)))
    return out


def task_metric_hint(task: str, inferred: bool) -> str:
    fit = ", ".join(name for name, spec in METRICS.items() if spec.task == task)
    other = "regression" if task == "classification" else "classification"
    tail = f"if the target is really a {other} target, set `task: {other}`" if inferred else f"or change `task:` to {other}"
    return f"metrics that fit a {task} task: {fit}; {tail}"


def _dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _expected_for(err: dict[str, Any]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind in ("float_type", "float_parsing", "int_type", "int_parsing", "int_from_float"):
        return "expected a whole number" if kind.startswith("int") else "expected a number"
    if kind in ("bool_type", "bool_parsing"):
        return "expected true or false"
    if kind == "string_type":
        return "expected a string"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "expected a mapping of keys"
    if kind == "list_type":
        return "expected a list"
    if kind == "literal_error":
        return "expected one of " + ctx.get("expected", "").replace("'", "").replace(" or ", ", ")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        word = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        limit = next(iter(ctx.values()))
        return f"expected a number {word} {limit:g}"
    if kind == "string_pattern_mismatch":
        return "expected letters, digits, '_', '.', '-' (starting with a letter or digit)"
    return err["msg"][0].lower() + err["msg"][1:]


def _format_error(err: dict[str, Any], positions: Positions, display: str) -> str:
    loc = tuple(p for p in err["loc"] if p not in _UNION_TAGS)
    kind = err["type"]
    if kind == "extra_forbidden":
        line, col = positions.key(loc)
        parent = _dotted(loc[:-1])
        known = _known_keys(loc[:-1])
        msg = f"{display}:{line}:{col}: {_dotted(loc)}: unknown key {loc[-1]!r}"
        guess = difflib.get_close_matches(str(loc[-1]), known, n=1)
        if guess:
            msg += f"; did you mean {guess[0]!r}?"
        elif known:
            msg += f"; expected one of {', '.join(known)} under {parent}"
        return msg
    if kind == "missing":
        line, col = positions.value(loc[:-1])
        return f"{display}:{line}:{col}: {_dotted(loc)}: required key is missing"
    line, col = positions.value(loc)
    got = err.get("input")
    return f"{display}:{line}:{col}: {_dotted(loc)}: {_expected_for(err)}, got {_show(got)}"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _known_keys(parent: tuple[Any, ...]) -> list[str]:
    model: Any = Config
    skip_key = False
    for part in parent:
        if isinstance(part, int) or skip_key:
            skip_key = False  # a list index, or the user's own key of a dict[str, Model]
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        candidates = [a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            # dict[str, Model]: step into the value model on the next part
            dict_args = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            if not dict_args:
                inner = _mapping_model(ann)  # drift.columns: a list or a mapping of names to limits
                if inner is None:
                    return []
                model, skip_key = inner, True
                continue
            candidates = dict_args
        model = candidates[0]
        skip_key = getattr(ann, "__origin__", None) is dict
    return list(getattr(model, "model_fields", {}))


def _mapping_model(ann: Any) -> Any:
    """The value model of a dict[str, Model] nested in an Optional/Union/Annotated."""
    import typing

    if typing.get_origin(ann) is dict:
        value = typing.get_args(ann)[-1]
        return value if isinstance(value, type) and issubclass(value, BaseModel) else None
    for arg in typing.get_args(ann):
        found = _mapping_model(arg)
        if found is not None:
            return found
    return None


_YAML11_FLOAT = re.compile(r"^[-+]?\d+(\.\d*)?[eE][-+]?\d+$")


def _hint_for(exc: ValidationError) -> str | None:
    kinds = {e["type"] for e in exc.errors()}
    if any(isinstance(e.get("input"), str) and _YAML11_FLOAT.match(e["input"]) for e in exc.errors()):
        return "YAML 1.1 reads exponents without a dot (1e-3) as text: write 0.001 or 1.0e-3"
    if any(tuple(e["loc"][:1]) == ("gates",) and e["type"] == "extra_forbidden" for e in exc.errors()):
        return "gates are keyed by metric name (" + ", ".join(METRICS) + "); each takes min, max, max_drop, max_drop_pct"
    if kinds & {"float_type", "float_parsing"}:
        return "write numbers without quotes, e.g. `min: 0.9`"
    return "`mlops schema` prints every key with its type"
