"""The hash split and row identity (issue 14).

A random split reshuffles every row when a pull request adds or removes one, so the
base ref's model was often trained on much of the candidate's holdout. The hash split
decides each row by itself: a sha256 (hashlib, never Python's salted ``hash()``) of its
key value, or of its contents, salted with the seed. A row keeps its side as long as it
(or its key) is unchanged, whatever else the data gains or loses.

The same identities say exactly which holdout rows a baseline trained on.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_MISSING = "\x00"  # a missing value: no text a CSV cell can hold
_FIELD, _COLUMN = "\x1e", "\x1f"  # separators no value contains unescaped meaningfully
_SCALE = float(1 << 64)


def _number(v: float) -> str:
    """One text per number, whatever the column's dtype: 5, 5.0 and '5' read alike
    (a CSV column of ints becomes float the day a PR adds an empty cell)."""
    if math.isnan(v):
        return _MISSING
    if v.is_integer() and abs(v) < 2**63:
        return str(int(v))
    return repr(v)


def _scalar(v: Any) -> str:
    import numpy as np
    import pandas as pd

    if v is None or v is pd.NA or v is pd.NaT:
        return _MISSING
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (float, np.floating)):
        return _number(float(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    # Text stays text: "007" and 7 are different keys.
    return str(v)


def column_text(values: "pd.Series") -> list[str]:
    """Each value of a column as canonical text (see :func:`_number`)."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(values):
        return ["true" if v else "false" for v in values.tolist()]
    if pd.api.types.is_integer_dtype(values) and not values.isna().any():
        return [str(int(v)) for v in values.tolist()]
    if pd.api.types.is_float_dtype(values):
        return [_number(float(v)) for v in values.tolist()]
    return [_scalar(v) for v in values.tolist()]


def key_ids(values: "pd.Series") -> list[bytes]:
    """Row identities by key value."""
    return [text.encode("utf-8", "surrogatepass") for text in column_text(values)]


def row_ids(frame: "pd.DataFrame", columns: list[str]) -> list[bytes]:
    """Row identities by content: a sha256 of every named column's name and value, in
    name order (a column reordering moves no row)."""
    names = sorted(columns)
    texts = [column_text(frame[name]) for name in names]
    out = []
    for row in zip(*texts):
        body = _FIELD.join(f"{name}{_COLUMN}{value}" for name, value in zip(names, row))
        out.append(hashlib.sha256(body.encode("utf-8", "surrogatepass")).digest())
    return out


def split_ids(frame: "pd.DataFrame", key: str | None) -> list[bytes]:
    """The identities the hash split assigns: the key's values, else each row's contents."""
    return key_ids(frame[key]) if key is not None else row_ids(frame, [str(c) for c in frame.columns])


def holdout_mask(ids: list[bytes], size: float, seed: int) -> "np.ndarray":
    """True for the rows the hash split holds out: the first 8 bytes of
    sha256(seed, identity) as a number in [0, 1) below ``size``. Raising ``size`` only
    moves rows into the holdout; the seed reshuffles everything."""
    import numpy as np

    salt = f"mlops-holdout:{seed}:".encode()
    return np.fromiter(
        (int.from_bytes(hashlib.sha256(salt + i).digest()[:8], "big") / _SCALE < size for i in ids),
        dtype=bool,
        count=len(ids),
    )


@dataclass
class Overlap:
    """Which of the candidate's holdout rows the baseline trained on."""

    seen: "np.ndarray"  # per holdout row: True when the baseline's training rows hold it
    by: str  # "key 'id'" or "row contents"

    @property
    def count(self) -> int:
        return int(self.seen.sum())

    @property
    def total(self) -> int:
        return len(self.seen)

    def share_text(self) -> str:
        return f"{self.count} of {self.total} holdout rows ({100 * self.count / self.total:.1f}%)" if self.total else "0 of 0 holdout rows"


def overlap(holdout: "pd.DataFrame", base_train: "pd.DataFrame", key: str | None) -> Overlap:
    """Exactly which rows of ``holdout`` are rows of ``base_train``: by the key's value
    when both tables have the key column, else by the contents of the columns both have
    (a column the PR added does not make an old row new)."""
    import numpy as np

    if key is not None and key in holdout.columns and key in base_train.columns:
        mine, theirs, by = key_ids(holdout[key]), key_ids(base_train[key]), f"key {key!r}"
    else:
        shared = [str(c) for c in holdout.columns if c in set(base_train.columns)]
        mine, theirs, by = row_ids(holdout, shared), row_ids(base_train, shared), "row contents"
    known = set(theirs)
    return Overlap(np.fromiter((i in known for i in mine), dtype=bool, count=len(mine)), by)
