"""Many models in one repository (issue 14, item 6): mlops-workspace.yaml lists the
models' mlops.yaml files; a PR runs the models whose fingerprint changed, one status
context per model plus the aggregate `mlops/gate`, one sticky comment per model, one
promotion PR per model and environment. Real git repos, the real flow, the local forge."""

from __future__ import annotations

import json

import pytest

from tests.helpers import GitRepo, mixed_frame, regression_frame

CHURN = """\
name: churn
data: {path: data.csv, target: churn}
training:
  estimator: sklearn.linear_model.LogisticRegression
  params: {C: 1.0, max_iter: 200}
metrics: [accuracy, roc_auc]
gates:
  accuracy: {min: 0.6}
deploy:
  environments:
    staging: {manifest: deploy/staging.yaml}
"""

PRICES = """\
name: prices
data: {path: data.csv, target: y}
training:
  estimator: sklearn.linear_model.Ridge
  params: {alpha: 1.0}
metrics: [rmse, r2]
gates:
  r2: {min: 0.5}
deploy:
  environments:
    staging: {manifest: deploy/staging.yaml}
"""


def make_workspace(repo: GitRepo) -> GitRepo:
    repo.gen(
        {
            "mlops-workspace.yaml": "models:\n  - models/*/mlops.yaml\n",
            "models/churn/mlops.yaml": CHURN,
            "models/churn/data.csv": mixed_frame(200).to_csv(index=False),
            "models/prices/mlops.yaml": PRICES,
            "models/prices/data.csv": regression_frame(150).to_csv(index=False),
        }
    )
    repo.commit("two models")
    return repo


def statuses(repo: GitRepo) -> dict:
    sha = repo.git("rev-parse", "HEAD")
    return json.loads((repo.path / ".mlops" / "forge" / "statuses" / f"{sha}.json").read_text())


def comments(repo: GitRepo, key: str) -> list[dict]:
    return json.loads((repo.path / ".mlops" / "forge" / key / "comments.json").read_text())


def trained(repo: GitRepo) -> set[str]:
    """Model keys with a cached model (a model trained by some run)."""
    folder = repo.path / ".mlops" / "cache" / "models"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


# -- the workspace file -----------------------------------------------------------------
def test_validate_checks_every_model(cli_noprefect, repo: GitRepo) -> None:
    make_workspace(repo)
    result = cli_noprefect("validate", cwd=repo.path)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "mlops-workspace.yaml: OK (2 model(s): churn, prices)"
    assert "models/churn/mlops.yaml: OK" in lines and "models/prices/mlops.yaml: OK" in lines
    # --config still validates the one file it names
    one = cli_noprefect("validate", "--config", "models/prices/mlops.yaml", cwd=repo.path)
    assert one.exit_code == 0 and one.output.startswith("models/prices/mlops.yaml: OK")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("models:\n  - models/*/mlops.yaml\n  - forecasting/*/mlops.yaml\n", "error: mlops-workspace.yaml:3:5: models[1]: 'forecasting/*/mlops.yaml' matches no file"),
        ("models:\n  - models/churn/mlops.yaml\n  - models/gone/mlops.yaml\n", "error: mlops-workspace.yaml:3:5: models[1]: 'models/gone/mlops.yaml' does not exist"),
        ("models:\n  - ../other/mlops.yaml\n", "error: mlops-workspace.yaml:2:5: models[0]: '../other/mlops.yaml' leaves the repository root ('..'); models live inside the repository"),
        ("model:\n  - models/*/mlops.yaml\n", "error: mlops-workspace.yaml:1:1: unknown key 'model'; did you mean 'models'?\nerror: mlops-workspace.yaml:1:1: models: required key is missing"),
        ("models: []\n", "error: mlops-workspace.yaml:1:9: models: expected a non-empty list of mlops.yaml paths or globs, got []"),
        ("models:\n  - [a, b\n", "error: mlops-workspace.yaml:3:1: invalid YAML:"),
    ],
)
def test_workspace_file_errors_have_positions(cli_noprefect, repo: GitRepo, text: str, error: str) -> None:
    make_workspace(repo)
    (repo.path / "mlops-workspace.yaml").write_text(text)
    for command in (["validate"],):
        result = cli_noprefect(*command, cwd=repo.path)
        assert result.exit_code == 2, result.output
        assert result.output.startswith(error), result.output


def test_duplicate_names_are_refused_with_both_positions(cli_noprefect, repo: GitRepo) -> None:
    make_workspace(repo)
    repo.edit("models/prices/mlops.yaml", "name: prices", "name: churn")
    for command in (["validate"],):
        result = cli_noprefect(*command, cwd=repo.path)
        assert result.exit_code == 2, (command, result.output)
        assert result.output.startswith(
            "error: models/prices/mlops.yaml:1:7: name: 'churn' is also the name of models/churn/mlops.yaml:1:7;"
            " each model in a workspace needs its own name (status contexts, comments and promotion branches are per name)\n"
        ), result.output


def test_a_member_config_error_is_reported_in_its_own_file(cli_noprefect, repo: GitRepo) -> None:
    make_workspace(repo)
    repo.edit("models/churn/mlops.yaml", "gates:", "gatez:")
    result = cli_noprefect("validate", cwd=repo.path)
    assert result.exit_code == 2
    assert result.output.startswith("error: models/churn/mlops.yaml:7:1: gatez: unknown key 'gatez'; did you mean 'gates'?")
