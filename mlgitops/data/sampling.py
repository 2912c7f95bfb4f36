"""A seeded uniform sample of a CSV/Parquet file, read in batches.

Drift needs a few tens of thousands of rows of each side, not the table: reading a
million-row file whole costs its raw bytes plus the frame (about 550 MB for 1M x 20
floats as CSV). Here the file is streamed in record batches (pyarrow), only the
needed columns are parsed, and a *bottom-k* sample is kept: every row gets a seeded
uniform key and the ``n`` rows with the smallest keys survive, which is a uniform
sample without replacement of exactly ``n`` rows whatever the batch boundaries.
Memory stays at one batch plus the sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

BATCH_ROWS = 65_536
BLOCK_BYTES = 1 << 20  # pyarrow's CSV reader holds a few blocks in flight: keep them small


@dataclass
class Sampled:
    frame: Any  # pandas.DataFrame of at most n rows, in file order
    rows: int  # rows in the whole file


def _batches(path: Path, kind: str, columns: list[str] | None) -> Any:
    """First the names of the columns read, then their record batches."""
    import pyarrow as pa

    if kind == "parquet":
        import pyarrow.parquet as pq

        handle = pq.ParquetFile(path)
        present = [c for c in columns if c in handle.schema_arrow.names] if columns is not None else handle.schema_arrow.names
        yield present
        yield from handle.iter_batches(batch_size=BATCH_ROWS, columns=present)
        return
    import pyarrow.csv as pcsv

    options = pcsv.ReadOptions(block_size=BLOCK_BYTES)
    header = pcsv.open_csv(path, read_options=options).schema
    present = [c for c in columns if c in header.names] if columns is not None else header.names
    yield present
    # Numbers are read as float64 (an integer column with a later 1.5 still fits), the
    # rest as text; a value that fits neither raises ArrowInvalid (pandas takes over).
    types = {f.name: (pa.float64() if pa.types.is_integer(f.type) or pa.types.is_floating(f.type) else (f.type if pa.types.is_boolean(f.type) else pa.string())) for f in header if f.name in present}
    yield from pcsv.open_csv(path, convert_options=pcsv.ConvertOptions(include_columns=present, column_types=types, strings_can_be_null=True), read_options=options)


def read_sample(path: Path, kind: str, columns: list[str] | None, n: int, seed: int) -> Sampled:
    """``n`` rows (all when the file has fewer) of ``columns`` (None: all), seeded."""
    import pyarrow as pa

    try:
        return _bottom_k(path, kind, columns, n, seed)
    except pa.ArrowInvalid:
        if kind == "parquet":
            raise
        return _bottom_k_pandas(path, columns, n, seed)  # e.g. text in a numeric column past the first block


def _bottom_k_pandas(path: Path, columns: list[str] | None, n: int, seed: int) -> Sampled:
    """The same sample through pandas' chunked CSV reader (slower, any mix of types)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    header = list(pd.read_csv(path, nrows=0).columns)
    use = [c for c in columns if c in header] if columns is not None else None
    kept: Any = None
    rows = 0
    for chunk in pd.read_csv(path, usecols=use, chunksize=BATCH_ROWS):
        chunk = chunk.assign(_key=rng.random(len(chunk)), _pos=np.arange(rows, rows + len(chunk)))
        rows += len(chunk)
        kept = chunk if kept is None else pd.concat([kept, chunk], ignore_index=True)
        if n and len(kept) > n:
            kept = kept.nsmallest(n, "_key")
    if kept is None:
        return Sampled(pd.DataFrame(columns=use or header), 0)
    frame = kept.sort_values("_pos").drop(columns=["_key", "_pos"]).reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    return Sampled(frame, rows)


def _parquet_take(path: Path, names: list[str], chosen: Any) -> Any:
    """Rows ``chosen`` of a Parquet file, one column of one row group at a time (a
    row group may hold a million rows: read whole, it would be the whole table)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(path)
    pieces: dict[str, list[Any]] = {name: [] for name in names}
    offset = 0
    for group in range(handle.num_row_groups):
        size = handle.metadata.row_group(group).num_rows
        lo, hi = np.searchsorted(chosen, [offset, offset + size])
        if hi > lo:
            index = pa.array(chosen[lo:hi] - offset)
            for name in names:
                pieces[name].append(handle.read_row_group(group, columns=[name]).column(0).take(index))
        offset += size
    frame = pa.table({name: pa.chunked_array(parts) for name, parts in pieces.items()}).to_pandas()
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _count_lines_without_quotes(path: Path) -> int | None:
    """Data rows of a CSV with no quote character (one line per row), counted from the
    bytes: ten times faster than parsing. None when a quote appears (a quoted field
    may hold a newline) or a line is blank: then the parser counts."""
    newlines, last = 0, b"\n"
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            if b'"' in chunk or b"\n\n" in chunk or b"\n\r\n" in chunk:
                return None
            if last == b"\n" and chunk.startswith((b"\n", b"\r\n")):
                return None
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    rows = newlines + (0 if last == b"\n" else 1)  # a last line without its newline
    return max(rows - 1, 0)  # the header


def _csv_take_lines(path: Path, names: list[str], chosen: Any) -> Any:
    """Data rows ``chosen`` of a quote-free CSV, cut out of its bytes by line; only
    those lines (plus the header) are parsed, with the types the full read uses."""
    import io

    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv

    picked: list[bytes] = []
    header = b""
    row = -1  # data row number of the first complete line in the buffer (-1: the header)
    carry = b""
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            buf = carry + chunk
            ends = np.flatnonzero(np.frombuffer(buf, dtype=np.uint8) == 10)
            if len(ends) == 0:
                carry = buf
                continue
            starts = np.concatenate(([0], ends[:-1] + 1))
            numbers = np.arange(row, row + len(ends))
            if row == -1:
                header = buf[: ends[0] + 1]
            lo, hi = np.searchsorted(chosen, [max(row, 0), row + len(ends)])
            for k in (chosen[lo:hi] - row):
                picked.append(buf[starts[k] : ends[k] + 1])
            row = int(numbers[-1]) + 1
            carry = buf[ends[-1] + 1 :]
    if carry.strip() and row >= 0 and len(chosen) and chosen[-1] == row:
        picked.append(carry + b"\n")  # the last line had no newline
    head = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=BLOCK_BYTES)).schema
    types = {f.name: (pa.float64() if pa.types.is_integer(f.type) or pa.types.is_floating(f.type) else (f.type if pa.types.is_boolean(f.type) else pa.string())) for f in head if f.name in names}
    table = pcsv.read_csv(io.BytesIO(header + b"".join(picked)), convert_options=pcsv.ConvertOptions(include_columns=names, column_types=types, strings_can_be_null=True))
    frame = table.to_pandas()
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _row_count(path: Path, kind: str, first: str | None) -> int:
    import pyarrow.csv as pcsv

    if kind == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    if first is None:
        return 0
    reader = pcsv.open_csv(path, convert_options=pcsv.ConvertOptions(include_columns=[first]), read_options=pcsv.ReadOptions(block_size=BLOCK_BYTES))
    return sum(batch.num_rows for batch in reader)


def _bottom_k(path: Path, kind: str, columns: list[str] | None, n: int, seed: int) -> Sampled:
    """Rows are chosen before any value is read: the keys depend only on the row's
    position, so with the row count known (Parquet metadata; a one-column pass over a
    CSV) the ``n`` smallest keys name the rows, and one pass takes just those."""
    import numpy as np
    import pyarrow as pa

    batches = _batches(path, kind, columns)
    schema_names = next(batches)  # the first item: the columns that will be read
    lines = _count_lines_without_quotes(path) if kind == "csv" else None
    rows = lines if lines is not None else _row_count(path, kind, schema_names[0] if schema_names else None)
    if n and rows > n:
        keys = np.random.default_rng(seed).random(rows)
        chosen = np.sort(np.argpartition(keys, n - 1)[:n])
        del keys
    else:
        chosen = None
    if kind == "parquet" and chosen is not None:
        return Sampled(_parquet_take(path, schema_names, chosen), rows)
    if kind == "csv" and chosen is not None and lines is not None:
        # One line per row: cut the chosen lines out of the bytes and parse only them.
        return Sampled(_csv_take_lines(path, schema_names, chosen), rows)
    parts, offset = [], 0
    for batch in batches:
        if chosen is None:
            parts.append(batch)
        else:
            lo, hi = np.searchsorted(chosen, [offset, offset + batch.num_rows])
            if hi > lo:
                parts.append(batch.take(pa.array(chosen[lo:hi] - offset)))
        offset += batch.num_rows
    if not parts:
        import pandas as pd

        return Sampled(pd.DataFrame(columns=schema_names), 0)
    frame = pa.Table.from_batches(parts).to_pandas()
    frame.columns = [str(c) for c in frame.columns]
    return Sampled(frame, rows)
