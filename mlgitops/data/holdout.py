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
_COLUMN = "\x1f"  # between column names in a row identity
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


_TOKEN = 16  # bytes per value in a row's identity
_CHUNK = 65_536  # rows tokenized at a time: memory stays at CHUNK x columns x TOKEN bytes
_EXACT = 2**53  # integers below this are exact as float64


def _token(v: Any) -> bytes:
    """One value as a fixed-width token: a number by its float64 bytes (5, 5.0 alike),
    a huge integer by its int64 bytes, text by a sha256 of it, missing as one token."""
    import numpy as np
    import pandas as pd

    if v is None or v is pd.NA or v is pd.NaT:
        return b"M" + bytes(_TOKEN - 1)
    if isinstance(v, (bool, np.bool_)):
        return b"B" + bytes([bool(v)]) + bytes(_TOKEN - 2)
    if isinstance(v, (int, np.integer)):
        i = int(v)
        if -_EXACT < i < _EXACT:
            return _float_token(float(i))
        if -(2**63) <= i < 2**63:
            return b"I" + i.to_bytes(8, "little", signed=True) + bytes(_TOKEN - 9)
    elif isinstance(v, (float, np.floating)):
        return _float_token(float(v))
    return b"S" + hashlib.sha256(str(v).encode("utf-8", "surrogatepass")).digest()[: _TOKEN - 1]


def _float_token(f: float) -> bytes:
    import numpy as np

    if math.isnan(f):
        return b"M" + bytes(_TOKEN - 1)
    return b"N" + np.float64(f + 0.0).tobytes() + bytes(_TOKEN - 9)  # + 0.0: -0.0 is 0.0


def _tokens(values: "pd.Series") -> "np.ndarray":
    """A column as an (n, TOKEN) uint8 array of :func:`_token`; numbers vectorized,
    anything else one :func:`_token` per distinct value."""
    import numpy as np
    import pandas as pd

    n = len(values)
    plain_numbers = pd.api.types.is_float_dtype(values) or (
        pd.api.types.is_integer_dtype(values) and not values.isna().any() and bool((values.abs() < _EXACT).all())
    )
    if plain_numbers and not pd.api.types.is_bool_dtype(values):
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan) + 0.0
        out = np.zeros((n, _TOKEN), dtype=np.uint8)
        out[:, 0] = ord("N")
        out[:, 1:9] = arr.astype("<f8").view(np.uint8).reshape(n, 8)
        missing = np.isnan(arr)
        out[missing] = 0
        out[missing, 0] = ord("M")
        return out
    codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=True)
    table = np.frombuffer(b"".join([_token(v) for v in uniques] + [_token(None)]), dtype=np.uint8).reshape(-1, _TOKEN)
    return table[codes]  # code -1 (missing) picks the last row


def row_ids(frame: "pd.DataFrame", columns: list[str]) -> list[bytes]:
    """Row identities by content: a sha256 of the named columns' names and each row's
    values as tokens, in name order (a column reordering moves no row). Vectorized per
    column: hashing a million rows costs about a second, not a Python loop per cell."""
    import numpy as np

    names = sorted(columns)
    header = hashlib.sha256(_COLUMN.join(names).encode("utf-8", "surrogatepass"))
    width = _TOKEN * len(names)
    out: list[bytes] = []
    for start in range(0, len(frame), _CHUNK):
        part = frame.iloc[start : start + _CHUNK]
        matrix = np.concatenate([_tokens(part[name]) for name in names], axis=1) if names else np.zeros((len(part), 0), dtype=np.uint8)
        raw = np.ascontiguousarray(matrix).tobytes()
        for i in range(len(part)):
            h = header.copy()
            h.update(raw[i * width : (i + 1) * width])
            out.append(h.digest())
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
