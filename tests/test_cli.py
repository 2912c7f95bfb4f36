"""The `mlops` command as users run it: a real subprocess, exit codes, fast paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import EXAMPLE, GitRepo, mixed_frame

MLOPS = [sys.executable, "-m", "mlgitops"]


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MLOPS, *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300)


def imported_modules(code: str, cwd: Path) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"], cwd=cwd, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_help_and_version(tmp_path: Path) -> None:
    result = run(["--help"], tmp_path)
    assert result.returncode == 0
    assert "Exit codes: 0 pass, 1 a gate failed, 2 invalid input, 3 internal error." in result.stdout
    for command in ("demo", "run", "schema", "validate"):
        assert f"  {command} " in result.stdout
    assert run(["--version"], tmp_path).stdout == "mlops, version 0.1.0\n"


def test_validate_ok_without_prefect(example_repo: GitRepo) -> None:
    result = run(["validate"], example_repo.path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "mlops.yaml: OK\n"
        "  data: sklearn:breast_cancer -> 426 training + 143 holdout rows, 30 feature(s), target 'target'\n"
        "  task: classification (inferred: target has 2 distinct whole-number values)\n"
        "  training: estimator sklearn.ensemble.RandomForestClassifier\n"
        "  gates: accuracy, f1, log_loss\n"
    )
    code = "import sys; sys.argv=['mlops','validate']\nfrom mlgitops.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass"
    assert not any(m == "prefect" or m.startswith("prefect.") for m in imported_modules(code, example_repo.path))


def test_validate_reports_data_problems(repo: GitRepo) -> None:
    repo.gen({"mlops.yaml": "name: x\ndata: {path: data/x.csv, target: y}\ntraining: {estimator: sklearn.linear_model.Ridge}\n", "data/x.csv": "a,b\n1,2\n"})
    result = run(["validate"], repo.path)
    assert result.returncode == 2
    assert result.stderr == "error: mlops.yaml:2:34: data.target: column 'y' not found in data/x.csv (columns: a, b)\n  hint: set data.target to the column you want to predict\n"


def test_validate_lists_every_config_problem(repo: GitRepo) -> None:
    repo.gen({"mlops.yaml": "name: x\ndata: {path: data/x.csv, target: y}\ntraining: {estimator: sklearn.linear_model.Ridge}\ngates:\n  rmse: {max: big}\n  r2: {mn: 0.5}\n"})
    result = run(["validate"], repo.path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[:2] == [
        "error: mlops.yaml:5:15: gates.rmse.max: expected a number, got 'big'",
        "error: mlops.yaml:6:8: gates.r2.mn: unknown key 'mn'; did you mean 'min'?",
    ]


def test_run_as_a_subprocess_against_a_prefect_server(prefect_api: str, example_repo: GitRepo) -> None:
    repo = example_repo
    repo.branch("pr").edit("mlops.yaml", "max_depth: 2", "max_depth: 1").edit("mlops.yaml", "n_estimators: 60", "n_estimators: 2").commit("worse")
    env = {"PREFECT_API_URL": prefect_api}
    first = run(["run", "--base", "main"], repo.path, env)
    assert first.returncode == 1, first.stderr
    assert first.stdout.startswith("FAIL breast-cancer: ")
    assert "comment: .mlops/forge/branch-pr/comment.md" in first.stdout
    # The cached rerun never imports Prefect (decided from fingerprints first).
    code = f"import os, sys; os.environ['PREFECT_API_URL']={prefect_api!r}; sys.argv=['mlops','run','--base','main']\nfrom mlgitops.cli import main\ntry:\n    main()\nexcept SystemExit as e:\n    assert e.code == 1, e.code"
    assert not any(m == "prefect" or m.startswith("prefect.") for m in imported_modules(code, repo.path))


def test_not_a_git_repo(tmp_path: Path) -> None:
    (tmp_path / "mlops.yaml").write_text(EXAMPLE)
    result = run(["run"], tmp_path)
    assert result.returncode == 2
    assert result.stderr == f"error: {tmp_path} is not inside a git repository\n  hint: run `git init` and commit your project, or pass --repo PATH\n"


def test_validate_mixed_data_notes(repo: GitRepo) -> None:
    frame = mixed_frame(60)
    frame.loc[[0, 1, 2], "churn"] = None
    repo.gen({"mlops.yaml": "name: x\ndata: {path: d.csv, target: churn}\ntraining: {estimator: sklearn.linear_model.LogisticRegression}\n", "d.csv": frame.to_csv(index=False)})
    result = run(["validate"], repo.path)
    assert result.returncode == 0, result.stderr
    assert "  note: dropped 3 row(s) with no 'churn' value\n" in result.stdout


def test_embedded_prefect_server_on_a_fresh_home(example_repo: GitRepo, tmp_path: Path) -> None:
    """No PREFECT_API_URL anywhere: mlops starts its own server and stops it on exit."""
    repo = example_repo
    repo.branch("pr").edit("mlops.yaml", "max_depth: 2", "max_depth: 4").commit("pr")
    home = tmp_path / "prefect-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(home)
    proc = subprocess.run([*MLOPS, "run", "--base", "main"], cwd=repo.path, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert (home / "prefect.db").is_file()  # the flow run was recorded in this home's database
    leftovers = subprocess.run(["pgrep", "-f", f"PREFECT_HOME={home}|prefect server start"], capture_output=True, text=True).stdout.split()
    mine = [pid for pid in leftovers if str(home) in Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")] if leftovers else []
    assert mine == []

    # The migrated database was kept as a template (user cache), with nothing run in it ...
    from mlgitops.service import prefect_db

    templates = list((Path(os.environ["XDG_CACHE_HOME"]) / "mlgitops" / "prefect-db").iterdir())
    assert [t.name for t in templates] == [f"{prefect_db.template_key()}.db"]
    assert flow_runs(templates[0]) == 0 and flow_runs(home / "prefect.db") == 1
    kept = templates[0].stat()
    # ... and the next new home starts from a copy of it: the run is recorded there, the template is untouched
    repo.edit("mlops.yaml", "max_depth: 4", "max_depth: 5").commit("pr, again")
    env["PREFECT_HOME"] = str(tmp_path / "another-home")
    again = subprocess.run([*MLOPS, "run", "--base", "main"], cwd=repo.path, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert flow_runs(tmp_path / "another-home" / "prefect.db") == 1
    assert (templates[0].stat().st_mtime_ns, templates[0].stat().st_ino) == (kept.st_mtime_ns, kept.st_ino)


def flow_runs(db: Path) -> int:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute("SELECT count(*) FROM flow_run").fetchone()[0]
