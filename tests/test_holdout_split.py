"""The hash split (data.holdout.split: hash / data.holdout.key) and the exact count of
holdout rows a baseline trained on (issue 14, deliverable 2)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from mlgitops.config.loader import load_config
from mlgitops.data.holdout import overlap, row_ids
from mlgitops.data.load import load_dataset
from mlgitops.errors import ConfigError, DataError
from tests.helpers import GitRepo, mixed_frame


def keyed(n: int = 400, seed: int = 0, start: int = 0) -> pd.DataFrame:
    frame = mixed_frame(n, seed)
    frame.insert(0, "id", range(start, start + n))
    return frame


def config(holdout: str = "", path: str = "data.csv") -> str:
    return f"name: churn\ndata:\n  path: {path}\n  target: churn\n{holdout}training:\n  estimator: sklearn.linear_model.LogisticRegression\n"


def load(tmp_path: Path, frame: pd.DataFrame, holdout: str, name: str = "v") -> tuple[pd.DataFrame, pd.DataFrame]:
    folder = tmp_path / name
    folder.mkdir()
    frame.to_csv(folder / "data.csv", index=False)
    (folder / "mlops.yaml").write_text(config(holdout))
    data = load_dataset(load_config(folder / "mlops.yaml"))
    return data.train, data.holdout


def sides(train: pd.DataFrame, holdout: pd.DataFrame, ident: list) -> dict:
    """Row identity -> "train" | "holdout"."""
    out = {i: "train" for i in ident(train)}
    out.update({i: "holdout" for i in ident(holdout)})
    return out


def pr_edit(frame: pd.DataFrame) -> pd.DataFrame:
    """What a PR does to the data: drops 20 rows, appends 30 new ones, reorders the rows."""
    kept = frame.drop(index=range(100, 120))
    fresh = keyed(30, seed=9, start=1000)
    out = pd.concat([kept, fresh]).sample(frac=1.0, random_state=3).reset_index(drop=True)
    return out


def test_keyed_hash_split_keeps_every_unchanged_row_on_its_side(tmp_path: Path) -> None:
    before = keyed()
    after = pr_edit(before)
    spec = "  holdout: {key: id}\n"
    base_train, base_holdout = load(tmp_path, before, spec, "base")
    pr_train, pr_holdout = load(tmp_path, after, spec, "pr")
    old = sides(base_train, base_holdout, lambda f: list(f["id"]))
    new = sides(pr_train, pr_holdout, lambda f: list(f["id"]))
    # So the base ref's model trained on none of the PR's holdout.
    assert overlap(pr_holdout, base_train, "id").share_text() == "0 of 80 holdout rows (0.0%)"
    unchanged = set(before["id"]) & set(after["id"])
    assert len(unchanged) == 380
    assert [i for i in sorted(unchanged) if old[i] != new[i]] == []
    assert len(old) == 400 and len(new) == 410  # every row has exactly one side
    # The assignment is pinned: sha256 of the seed and the key's text, first 8 bytes
    # below size. A change here would move every user's holdout.
    def pinned(i: int) -> str:
        u = int.from_bytes(hashlib.sha256(f"mlops-holdout:42:{i}".encode()).digest()[:8], "big") / 2**64
        return "holdout" if u < 0.2 else "train"

    assert old == {i: pinned(i) for i in before["id"]} and new == {i: pinned(i) for i in after["id"]}
    assert sum(v == "holdout" for v in old.values()) == 77


def test_content_hash_split_keeps_every_unchanged_row_on_its_side(tmp_path: Path) -> None:
    before = mixed_frame()
    before["income"] = before["income"].fillna(0).astype(int)  # read back as int64...
    after = pd.concat([before.drop(index=range(0, 20)), mixed_frame(30, seed=9)]).sample(frac=1.0, random_state=5)
    after.loc[after.index[0], "income"] = np.nan  # ...and as float64 once a cell is empty
    after = after[["churn", "plan", "city", "income", "age"]]  # columns reordered too
    spec = "  holdout: {split: hash}\n"

    def ident(f: pd.DataFrame) -> list:
        return row_ids(f, ["age", "income", "city", "plan", "churn"])

    old = sides(*load(tmp_path, before, spec, "base"), ident)
    new = sides(*load(tmp_path, after, spec, "pr"), ident)
    changed = set(ident(after.iloc[[0]]))
    unchanged = (set(old) & set(new)) - changed
    assert len(unchanged) == 379  # 380 kept rows, one of them given an empty income
    assert [i for i in unchanged if old[i] != new[i]] == []


def test_the_seed_reshuffles_and_the_size_only_grows_the_holdout(tmp_path: Path) -> None:
    frame = keyed()
    small = set(load(tmp_path, frame, "  holdout: {key: id, size: 0.2}\n", "a")[1]["id"])
    large = set(load(tmp_path, frame, "  holdout: {key: id, size: 0.3}\n", "b")[1]["id"])
    other = set(load(tmp_path, frame, "  holdout: {key: id, seed: 7}\n", "c")[1]["id"])
    assert small < large
    assert small != other


def test_overlap_is_counted_exactly_on_a_constructed_case() -> None:
    holdout = pd.DataFrame({"id": [1, 2, 3, 4, 5, 6, 7, 8], "x": [0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], "y": [0, 1, 0, 1, 0, 1, 0, 1]})
    base_train = pd.DataFrame({"id": [2.0, 4.0, 6.0, 9.0, 10.0], "x": [1.0, 9.0, 5.0, 0.0, 0.0], "y": [1, 1, 1, 0, 0]})
    by_key = overlap(holdout, base_train, "id")
    assert (by_key.seen.tolist(), by_key.count, by_key.total, by_key.by) == ([False, True, False, True, False, True, False, False], 3, 8, "key 'id'")
    assert by_key.share_text() == "3 of 8 holdout rows (37.5%)"
    # By content: id 4 changed its x, so only ids 2 and 6 are the same rows; a column the
    # candidate added does not make them new.
    by_rows = overlap(holdout.assign(extra="z"), base_train, None)
    assert (by_rows.seen.tolist(), by_rows.share_text(), by_rows.by) == ([False, True, False, False, False, True, False, False], "2 of 8 holdout rows (25.0%)", "row contents")


def test_the_note_gives_the_exact_count_and_what_was_done() -> None:
    from types import SimpleNamespace

    from mlgitops.config.loader import Holdout
    from mlgitops.data.holdout import Overlap
    from mlgitops.run.steps import overlap_note

    def plan(**holdout: object) -> SimpleNamespace:
        return SimpleNamespace(candidate=SimpleNamespace(cfg=SimpleNamespace(config=SimpleNamespace(data=SimpleNamespace(holdout=Holdout(**holdout))))))

    some = Overlap(np.array([True] * 115 + [False] * 28), "row contents")
    assert overlap_note(plan(seed=8), some, "") == (
        "115 of 143 holdout rows (80.4%) were in the baseline's training data (matched by row contents; the random split moves rows "
        "when the data or the split changes), so its scores may be optimistic; `data.holdout.split: hash` would exclude them."
    )
    assert overlap_note(plan(split="hash"), some, "") == "115 of 143 holdout rows (80.4%) were in the baseline's training data and are excluded (matched by row contents): both models are compared on the other 28 row(s)."
    assert overlap_note(plan(key="id"), Overlap(np.array([True, True]), "key 'id'"), "") == "2 of 2 holdout rows (100.0%) were in the baseline's training data and are excluded (matched by key 'id'): no row is left to compare them on, so relative gates are skipped."
    assert overlap_note(plan(key="id"), Overlap(np.array([False] * 3), "key 'id'"), "") == "0 of 3 holdout rows (0.0%) were in the baseline's training data (matched by key 'id'): it is scored on rows it never saw."
    assert overlap_note(plan(), None, "the base ref's data could not be read: x") == "The baseline was trained on other data, and which rows of this holdout it trained on cannot be told (the base ref's data could not be read: x); its scores may be optimistic."
    assert overlap_note(plan(), None, "") is None


def test_the_random_split_is_still_the_default(tmp_path: Path) -> None:
    frame = mixed_frame()
    train, holdout = load(tmp_path, frame, "  holdout: {seed: 7}\n")
    want_train, want_holdout = train_test_split(frame, test_size=0.2, random_state=7, stratify=frame["churn"])
    assert len(holdout) == 80
    pd.testing.assert_frame_equal(holdout, want_holdout.reset_index(drop=True))
    pd.testing.assert_frame_equal(train, want_train.reset_index(drop=True))
    explicit = load(tmp_path, frame, "  holdout: {seed: 7, split: random}\n", "explicit")[1]
    pd.testing.assert_frame_equal(explicit, holdout)


def problems(tmp_path: Path, holdout: str) -> list[str]:
    (tmp_path / "mlops.yaml").write_text(config(holdout))
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "mlops.yaml")
    return info.value.problems


def test_config_errors_point_at_the_key(tmp_path: Path) -> None:
    assert problems(tmp_path, "  holdout:\n    key: id\n    split: random\n") == ["mlops.yaml:7:12: data.holdout.split: data.holdout.key is used by the hash split only; remove `split: random` or the key"]
    assert problems(tmp_path, "  holdout:\n    key: churn\n") == ["mlops.yaml:6:10: data.holdout.key: the target 'churn' cannot be the key: every row of a class would land on one side"]
    assert problems(tmp_path, "  holdout: {split: hash, stratify: true}\n") == ["mlops.yaml:5:36: data.holdout.stratify: a hash split assigns each row by itself and cannot stratify; remove `stratify` or use `split: random`"]
    assert problems(tmp_path, "  holdout: {split: shuffled}\n") == ["mlops.yaml:5:20: data.holdout.split: expected one of random, hash, got 'shuffled'"]


def test_a_missing_or_empty_key_column_is_a_data_error_with_its_position(tmp_path: Path) -> None:
    frame = keyed(50)
    frame.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "mlops.yaml").write_text(config("  holdout:\n    key: ID\n"))
    with pytest.raises(DataError) as info:
        load_dataset(load_config(tmp_path / "mlops.yaml"))
    assert info.value.message == "mlops.yaml:6:10: data.holdout.key: no column 'ID' in data.csv; did you mean 'id'?"
    frame.loc[[3, 7], "id"] = np.nan
    frame.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "mlops.yaml").write_text(config("  holdout:\n    key: id\n"))
    with pytest.raises(DataError) as info:
        load_dataset(load_config(tmp_path / "mlops.yaml"))
    assert info.value.message == "mlops.yaml:6:10: data.holdout.key: column 'id' has 2 row(s) with no value"


def test_a_pr_switching_to_the_hash_split_excludes_the_rows_the_baseline_trained_on(cli, repo: GitRepo) -> None:
    frame = keyed(300)
    yaml = "name: churn\ndata: {path: data.csv, target: churn}\ntraining: {estimator: sklearn.linear_model.LogisticRegression}\ngates:\n  accuracy: {max_drop: 0.5}\n"
    repo.gen({"data.csv": frame.to_csv(index=False), "mlops.yaml": yaml}).commit("random split")
    after = frame.drop(index=range(0, 20))
    repo.branch("keyed").gen({"data.csv": after.to_csv(index=False), "mlops.yaml": yaml.replace("target: churn}", "target: churn, holdout: {key: id}}")}).commit("hash split, 20 rows fewer")
    result = cli("run", "--base", "main", "--json", cwd=repo.path)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # Independently: the base's training ids (sklearn's stratified split) against the PR's holdout ids.
    base_train = set(train_test_split(frame, test_size=0.2, random_state=42, stratify=frame["churn"])[0]["id"])
    (repo.path / "check").mkdir()
    after.to_csv(repo.path / "check" / "data.csv", index=False)
    (repo.path / "check" / "mlops.yaml").write_text(config("  holdout: {key: id}\n"))
    holdout = load_dataset(load_config(repo.path / "check" / "mlops.yaml")).holdout
    seen = sum(i in base_train for i in holdout["id"])
    total = len(holdout)
    assert (seen, total) == (42, 52)
    note = f"{seen} of {total} holdout rows ({100 * seen / total:.1f}%) were in the baseline's training data and are excluded (matched by key 'id'): both models are compared on the other {total - seen} row(s)."
    assert note in report["notes"]
    assert report["data"]["excluded_rows"] == seen and report["data"]["holdout_rows"] == total
    assert report["data"]["holdout_source"] == "a 20% hash split by key 'id', seed 42"
    assert report["baseline"]["scored_on"] == f"the candidate's holdout without the {seen} row(s) it trained on"
    assert [g["skipped"] for g in report["gates"] if g["metric"] == "accuracy"] == [False]
    body = (repo.path / ".mlops" / "forge" / "branch-keyed" / "comment.md").read_text()
    assert "Classification model, scored on 10 of 52 holdout rows (the baseline trained on the other 42).\n" in body
    assert "\n- 42 of 52 holdout rows (80.8%) were in the baseline's training data and are excluded (matched by key 'id'): both models are compared on the other 10 row(s).\n" in body

    # Another candidate against the now cached baseline: its training rows are read from the base ref.
    repo.edit("mlops.yaml", "LogisticRegression}", "LogisticRegression, params: {C: 0.5}}").commit("C")
    again = json.loads(cli("run", "--base", "main", "--json", cwd=repo.path).stdout)
    assert (again["baseline"]["source"], again["candidate"]["source"]) == ("cache", "trained")
    assert again["data"]["excluded_rows"] == 42 and note in again["notes"]


def test_validate_counts_the_hash_split_exactly_and_checks_the_key(tmp_path: Path) -> None:
    from mlgitops.data.check import check_data

    frame = keyed(400)
    frame.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "mlops.yaml").write_text(config("  holdout: {key: id}\n"))
    summary = check_data(load_config(tmp_path / "mlops.yaml"))
    assert (summary.train_rows, summary.holdout_rows) == (323, 77)  # the split's own counts, not 20% rounded
    (tmp_path / "mlops.yaml").write_text(config("  holdout: {key: ID}\n"))
    with pytest.raises(DataError) as info:
        check_data(load_config(tmp_path / "mlops.yaml"))
    assert info.value.message == "mlops.yaml:5:18: data.holdout.key: no column 'ID' in data.csv; did you mean 'id'?"
