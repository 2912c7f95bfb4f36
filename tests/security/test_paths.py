"""Paths in mlops.yaml stay inside the repository, symlinks followed, and messages do
not quote the files they read (issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import GitRepo, mixed_frame

SECRET = "TOPSECRET-7f3a9c"
HINT = (
    "  hint: paths in mlops.yaml are relative to its folder and must stay inside the repository, symlinks included: "
    "move the file into the repository (an operator can allow outside paths for trusted repositories with MLOPS_ALLOW_OUTSIDE_PATHS=1)\n"
)


def config(path: str, extra: str = "") -> str:
    return f"name: churn\ndata: {{path: '{path}', target: churn}}\ntraining: {{estimator: sklearn.linear_model.LogisticRegression}}\n{extra}"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file beside the repository, not in it, that looks like a secret worth stealing."""
    path = tmp_path / "outside" / "secret.csv"
    path.parent.mkdir()
    path.write_text("api_key,churn\n" + "".join(f"{SECRET}-{i},{i % 2}\n" for i in range(10)))
    return path


@pytest.fixture
def project(repo: GitRepo) -> GitRepo:
    repo.gen({"data/churn.csv": mixed_frame(120).to_csv(index=False)})
    return repo


def escapes(secret: Path, repo: GitRepo) -> dict[str, tuple[str, str]]:
    """data.path value -> why it is refused."""
    (repo.path / "data" / "link.csv").symlink_to(secret)
    return {
        "absolute": (str(secret), "an absolute path"),
        "dot-dot": ("../outside/secret.csv", "'..' leads out of it"),
        "symlink": ("data/link.csv", "a symlink leads out of it"),
    }


@pytest.mark.parametrize("kind", ["absolute", "dot-dot", "symlink"])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_data_path_out_of_the_repository_is_exit_2_and_never_read(cli_noprefect, project: GitRepo, secret: Path, kind: str, command: str) -> None:
    value, why = escapes(secret, project)[kind]
    project.gen({"mlops.yaml": config(value)}).commit("pr")
    result = cli_noprefect(command, *(["--base", "main"] if command == "run" else []), cwd=project.path)
    assert result.exit_code == 2, result.output
    shown = repr(value if len(value) <= 80 else value[:80] + "...")
    assert result.stderr == f"error: mlops.yaml:2:14: data.path: {shown} is outside the repository ({why})\n" + HINT
    assert SECRET not in result.output
    assert project.mlops_files() == []


DATA = "data: {path: data/churn.csv, target: churn}\n"
TRAIN = "training: {estimator: sklearn.linear_model.LogisticRegression}\n"
FIELDS = {  # field -> (mlops.yaml, where the message points, the value shown)
    "data.holdout.path": (
        "data: {path: data/churn.csv, target: churn, holdout: {path: ../outside/secret.csv}}\n" + TRAIN,
        "mlops.yaml:1:61: data.holdout.path",
        "../outside/secret.csv",
    ),
    "training.code": (DATA + "training: {estimator: sklearn.linear_model.LogisticRegression, code: [src, ../outside]}\n", "mlops.yaml:2:76: training.code[1]", "../outside"),
    "report.templates": (DATA + TRAIN + "report: {templates: ../outside}\n", "mlops.yaml:3:21: report.templates", "../outside"),
    "deploy manifest": (
        DATA + TRAIN + "deploy: {environments: {production: {manifest: ../outside/prod.yaml}}}\n",
        "mlops.yaml:3:48: deploy.environments.production.manifest",
        "../outside/prod.yaml",
    ),
    "drift.reference": (DATA + TRAIN + "drift: {reference: ../outside/secret.csv}\n", "mlops.yaml:3:20: drift.reference", "../outside/secret.csv"),
}


@pytest.mark.parametrize("field", list(FIELDS))
def test_every_path_field_is_held_inside(cli_noprefect, project: GitRepo, secret: Path, field: str) -> None:
    text, where, value = FIELDS[field]
    project.gen({"mlops.yaml": text, "src/train.py": "x = 1\n"})
    result = cli_noprefect("validate", cwd=project.path)
    assert (result.exit_code, result.stderr) == (2, f"error: {where}: {value!r} is outside the repository ('..' leads out of it)\n" + HINT)


def test_a_config_in_a_subfolder_may_reach_up_inside_the_repository(cli_noprefect, project: GitRepo) -> None:
    """The near miss: `..` is fine while it stays in the repository."""
    project.gen({"models/churn/mlops.yaml": config("../../data/churn.csv")})
    result = cli_noprefect("validate", "--config", "models/churn/mlops.yaml", cwd=project.path)
    assert result.exit_code == 0, result.output


def test_the_operator_may_allow_outside_paths(cli_noprefect, project: GitRepo, secret: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project.gen({"mlops.yaml": config(str(secret))})
    monkeypatch.setenv("MLOPS_ALLOW_OUTSIDE_PATHS", "1")
    result = cli_noprefect("validate", cwd=project.path)
    assert result.exit_code == 0, result.output


def test_a_symlink_committed_at_the_base_ref_is_not_followed_at_read_time(project: GitRepo, secret: Path, tmp_path: Path) -> None:
    """The base side trains in a checkout of the base commit; a symlink there that
    leads out is refused when the file is opened, not only when the config is read."""
    from mlgitops.config.loader import load_config
    from mlgitops.data.load import load_dataset
    from mlgitops.errors import DataError

    project.gen({"mlops.yaml": config("data/churn.csv")}).commit("base")
    cfg = load_config(project.path / "mlops.yaml")
    checkout = tmp_path / "base-checkout"
    (checkout / "data").mkdir(parents=True)
    (checkout / ".git").write_text("gitdir: elsewhere\n")  # what `git worktree add` leaves
    (checkout / "data" / "churn.csv").symlink_to(secret)
    with pytest.raises(DataError) as info:
        load_dataset(cfg, checkout)
    assert info.value.message == "mlops.yaml:2:14: data.path: 'data/churn.csv' is outside the repository (a symlink leads out of it)"


def test_a_parse_error_does_not_quote_the_row(cli_noprefect, project: GitRepo) -> None:
    """pyarrow appends the offending row to its error; the message keeps only the counts."""
    rows = mixed_frame(40).to_csv(index=False) + f"1,2,{SECRET},pro,1,extra,fields\n"
    project.gen({"mlops.yaml": config("data/churn.csv"), "data/churn.csv": rows})
    result = cli_noprefect("validate", cwd=project.path)
    assert result.exit_code == 2
    assert result.stderr == (
        "error: mlops.yaml:2:14: data.path: cannot read data/churn.csv as csv: CSV parse error: Expected 5 columns, got 7\n"
        "  hint: check the delimiter and quoting of that line\n"
    )


def test_a_long_header_is_shown_cut(cli_noprefect, project: GitRepo) -> None:
    header = "a" * 30 + SECRET + "b" * 100
    project.gen({"mlops.yaml": config("data/churn.csv"), "data/churn.csv": f"{header},x\n1,2\n3,4\n"})
    result = cli_noprefect("validate", cwd=project.path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: mlops.yaml:2:40: data.target: column 'churn' not found in data/churn.csv (columns: {'a' * 30}{SECRET[:10]}..., x)\n")


def test_mlops_yaml_itself_may_not_be_a_symlink_out(cli_noprefect, project: GitRepo, tmp_path: Path) -> None:
    """Schema errors quote values: a committed mlops.yaml linked to a YAML file
    elsewhere would print that file's keys and values."""
    elsewhere = tmp_path / "outside" / "credentials.yaml"
    elsewhere.parent.mkdir(exist_ok=True)
    elsewhere.write_text(f"aws_secret_access_key: {SECRET}\n")
    (project.path / "mlops.yaml").symlink_to(elsewhere)
    result = cli_noprefect("validate", cwd=project.path)
    assert (result.exit_code, result.stderr) == (2, "error: mlops.yaml:1:1: the config file itself is outside the repository (a symlink leads out of it)\n" + HINT)


def test_the_base_refs_outside_path_means_no_baseline(project: GitRepo, secret: Path) -> None:
    """The base side reads the base commit's mlops.yaml: the same rule, before any read."""
    from mlgitops.plan.decide import plan_baseline

    project.gen({"mlops.yaml": config("../outside/secret.csv")}).commit("base")
    plan = plan_baseline(project.path, "mlops.yaml", "main", project.git("rev-parse", "HEAD"))
    assert (plan.kind, plan.note) == (
        "none",
        "the mlops.yaml on `main` is invalid, so it has no baseline (mlops.yaml@main:2:14: data.path: '../outside/secret.csv' is outside the repository ('..' leads out of it))",
    )
