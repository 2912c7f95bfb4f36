"""The streamed, seeded sample drift reads reference files with (mlgitops.data.sampling)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgitops.data.sampling import BATCH_ROWS, read_sample


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_exact_seeded_sample_in_file_order(tmp_path: Path, kind: str) -> None:
    rows = 3 * BATCH_ROWS + 17  # several batches (and Parquet row groups)
    frame = pd.DataFrame({"i": np.arange(rows), "x": np.arange(rows) * 0.5, "city": np.where(np.arange(rows) % 3 == 0, "Oslo", None)})
    path = tmp_path / f"t.{kind}"
    frame.to_csv(path, index=False) if kind == "csv" else frame.to_parquet(path, row_group_size=BATCH_ROWS)
    got = read_sample(path, kind, ["x", "i", "city", "absent"], 1000, 7)
    assert got.rows == rows and len(got.frame) == 1000 and list(got.frame.columns) == ["x", "i", "city"]
    idx = got.frame["i"].to_numpy().astype(int)
    assert (np.diff(idx) > 0).all()  # file order, no repeats
    assert (got.frame["x"].to_numpy() == idx * 0.5).all()  # whole rows, not mixed
    assert got.frame["city"].isna().sum() == (idx % 3 != 0).sum()
    assert idx.max() > 3 * BATCH_ROWS - 1000 and idx.min() < 1000  # spread over the file
    again = read_sample(path, kind, ["x", "i", "city"], 1000, 7)
    assert (again.frame["i"].to_numpy() == got.frame["i"].to_numpy()).all()  # seeded
    other = read_sample(path, kind, ["i"], 1000, 8)
    assert set(other.frame["i"]) != set(got.frame["i"])
    whole = read_sample(path, kind, None, 0, 0)
    assert whole.rows == rows and len(whole.frame) == rows


def test_csv_whose_types_change_after_the_first_block_falls_back_to_pandas(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    rows = 400_000  # the text value lands well past pyarrow's first block
    pd.DataFrame({"a": ["1"] * rows + ["unknown"], "b": range(rows + 1)}).to_csv(path, index=False)
    got = read_sample(path, "csv", None, 500, 0)
    assert got.rows == rows + 1 and len(got.frame) == 500 and list(got.frame.columns) == ["a", "b"]


def test_quoted_and_plain_csv_give_the_same_sample(tmp_path: Path) -> None:
    """A quote-free CSV is sampled by cutting lines out of its bytes; one with quotes
    (a field may hold a newline) through the parser: the same rows either way."""
    rows = 2 * BATCH_ROWS + 5
    frame = pd.DataFrame({"i": np.arange(rows), "note": ["plain"] * rows})
    plain, quoted = tmp_path / "plain.csv", tmp_path / "quoted.csv"
    frame.to_csv(plain, index=False)
    frame.assign(note=["two\nlines" if i == 7 else "plain" for i in range(rows)]).to_csv(quoted, index=False)
    a, b = read_sample(plain, "csv", None, 300, 3), read_sample(quoted, "csv", None, 300, 3)
    assert a.rows == b.rows == rows
    assert (a.frame["i"].to_numpy() == b.frame["i"].to_numpy()).all() and len(a.frame) == 300
    assert set(a.frame["note"]) == {"plain"}
