"""The data contract: checked before training with Evidently, a table in the comment,
violations named by column and row count, a gate when configured."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import GitRepo, mixed_frame

CONFIG = """\
name: churn
data:
  path: data/churn.csv
  target: churn
  contract:
    rows: {min: 100, max: 100000}
    columns:
      age: {type: number, min: 0, max: 120, max_null_share: 0.2}
      income: {type: number, min: 0}
      city: {type: string, allowed: [paris, lyon, nice, lille]}
      plan: {nullable: false, allowed: [basic, pro]}
      churn: {type: integer, allowed: [0, 1]}
training: {estimator: sklearn.linear_model.LogisticRegression}
gates: {accuracy: {min: 0.5}}
"""


def make(repo: GitRepo) -> GitRepo:
    (repo.path / "data").mkdir()
    mixed_frame(400).to_csv(repo.path / "data" / "churn.csv", index=False)
    repo.gen({"mlops.yaml": CONFIG}).commit("churn with a contract")
    return repo


def comment(repo: GitRepo, key: str) -> str:
    return next((repo.path / ".mlops" / "forge").glob(f"{key}*/comment.md")).read_text()


def test_data_that_keeps_the_contract(cli, repo: GitRepo) -> None:
    make(repo).branch("c").edit("mlops.yaml", "LogisticRegression}", "LogisticRegression, params: {C: 0.5}}").commit()
    result = cli("run", "--base", "main", "--json", cwd=repo.path)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [c["passed"] for c in report["contract"]] == [True] * 12
    assert report["contract"][0] == {"column": "(rows)", "check": "rows", "expected": "100 to 100000 rows", "found": "400 rows", "violations": 0, "passed": True}
    assert "**Data contract**: ✅ all 12 checks hold (5 column(s), row count)" in comment(repo, "branch-c")


def test_violations_are_named_by_column_and_row_count(cli, repo: GitRepo) -> None:
    make(repo).branch("shifted")
    frame = mixed_frame(400)
    frame.loc[:29, "age"] = frame.loc[:29, "age"] + 100  # 30 impossible ages
    frame.loc[40:44, "city"] = "atlantis"  # 5 unknown cities
    frame.loc[50:51, "plan"] = None  # 2 missing plans
    frame.to_csv(repo.path / "data" / "churn.csv", index=False)
    repo.commit("new data")
    over = int((frame["age"] > 120).sum())
    assert over >= 25
    result = cli("run", "--base", "main", "--json", cwd=repo.path)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    broken = {(c["column"], c["check"]): c for c in report["contract"] if not c["passed"]}
    assert set(broken) == {("age", "range"), ("city", "allowed"), ("plan", "missing")}
    assert broken["age", "range"]["violations"] == over
    assert broken["city", "allowed"]["found"].startswith("5 row(s) with other values (")
    assert broken["plan", "missing"]["found"] == "2 missing (0.5%)"
    body = comment(repo, "branch-shifted")
    assert "**Data contract**: ❌ 3 of 12 checks broken" in body
    assert f"| `age` | range | 0 to 120 | {over} row(s) outside (" in body
    assert "- ❌ `plan.contract`" not in body and "- ❌ `contract.contract`: data contract: plan: missing: expected no missing values, found 2 missing (0.5%)" in body
    assert report["summary"].startswith("3 of ")

    repo.gen({"mlops.yaml": CONFIG.replace("  contract:\n", "  contract:\n    on_violation: warn\n")}).commit("warn only")
    warned = cli("run", "--base", "main", "--json", cwd=repo.path)
    assert warned.exit_code == 0, warned.output
    assert json.loads(warned.stdout)["summary"].endswith(", 3 data contract checks broken (warn only)")


def test_a_contract_column_the_data_lacks_and_bad_contract_keys(cli, cli_noprefect, repo: GitRepo) -> None:
    make(repo).branch("typo")
    repo.gen({"mlops.yaml": CONFIG.replace("      plan: {nullable: false", "      plan_type: {nullable: false")}).commit()
    report = json.loads(cli("run", "--base", "main", "--json", cwd=repo.path).stdout)
    missing = [c for c in report["contract"] if c["column"] == "plan_type"]
    assert missing == [{"column": "plan_type", "check": "present", "expected": "a column of the data", "found": "missing from the data", "violations": 400, "passed": False}]
    repo.gen({"mlops.yaml": CONFIG.replace("min: 0, max: 120", "min: 120, max: 0")}).commit()
    bad = cli_noprefect("validate", cwd=repo.path)
    assert bad.exit_code == 2
    assert "error: mlops.yaml:8:12: data.contract.columns.age: min (120) is greater than max (0); no value can pass" in bad.output


def test_validate_notes_a_contract_column_the_data_lacks(cli_noprefect, repo: GitRepo) -> None:
    make(repo)
    repo.gen({"mlops.yaml": CONFIG.replace("      plan: {nullable: false", "      plan_type: {nullable: false").replace("      plan_type: {nullable: false, allowed: [basic, pro]}", "      plan_type: {nullable: false, allowed: [basic, pro], mni: 1}")})
    typo = cli_noprefect("validate", cwd=repo.path)
    assert typo.exit_code == 2 and "data.contract.columns.plan_type.mni: unknown key 'mni'; did you mean 'min'?" in typo.output
    repo.gen({"mlops.yaml": CONFIG.replace("      plan: {nullable: false", "      plan_type: {nullable: false")})
    result = cli_noprefect("validate", cwd=repo.path)
    assert result.exit_code == 0
    assert "  note: mlops.yaml:11:18: data.contract.columns.plan_type: not a column of data/churn.csv; the run's contract check will fail" in result.output


def test_contract_edge_cases_are_checks_not_crashes(tmp_path: Path) -> None:
    import pandas as pd

    from mlgitops.config.loader import parse_config
    from mlgitops.data.contract import check_contract

    text = """\
data:
  path: d.csv
  target: churn
  contract:
    columns:
      age: {type: number, min: 0}
      churn: {type: integer, allowed: ['0', '1']}
training: {estimator: sklearn.linear_model.LogisticRegression}
"""
    cfg = parse_config(text, tmp_path / "mlops.yaml", "mlops.yaml")
    frame = pd.DataFrame({"age": ["31", "unknown", "40"], "churn": [0, 1, 1]})
    checks = {(c.column, c.check): c for c in check_contract(cfg, frame)}
    assert checks["age", "range"].found == "1 value(s) that are not numbers (dtype object)" and not checks["age", "range"].passed
    assert checks["churn", "allowed"].passed  # '0' and '1' mean the numbers on a numeric column
    frame["churn"] = ["x", "x", "x"]
    assert {(c.column, c.check): c.violations for c in check_contract(cfg, frame)}["churn", "type"] == 3
