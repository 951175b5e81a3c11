"""Streaming readers of the batch input formats, each resumable from a cursor.

A reader yields :class:`Record` s in input order: the 1-based line (JSONL and text: the physical line;
CSV: the data row, header not counted; Parquet: the row), the id field if the input has one, and
either the text or the error that line gets (bad JSON, a missing field, a text that is not a
string, bytes that are not UTF-8). Each record carries the cursor *after* it, an int the reader can
start from again (a byte offset for the line formats, a row index for Parquet), so a resumed run
seeks straight to where it stopped instead of re-reading what it had done.

Nothing here holds more than one line (CSV: one record; Parquet: one record batch) in memory.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FORMATS = ("jsonl", "csv", "parquet", "txt")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet",
             ".pq": "parquet", ".txt": "txt", ".text": "txt"}
_BOM = b"\xef\xbb\xbf"


class InputError(ValueError):
    """The input as a whole cannot be read (no such file, no text column): the run stops, naming the file."""


@dataclass(slots=True)
class Record:
    line: int
    id: object = None
    text: str | None = None
    error: dict | None = None  # {"code", "message"}: the line's output is this error instead of a result
    cursor: int = 0  # where a reader starts to yield the record after this one


def detect_format(path: str | Path, given: str | None) -> str:
    if given:
        if given not in FORMATS:
            raise InputError(f"--format {given!r}: expected one of {', '.join(FORMATS)}")
        return given
    fmt = _SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: cannot tell the format from the file name; give --format {'|'.join(FORMATS)}")
    return fmt


def _kind(v) -> str:
    name = {bool: "boolean", int: "integer", float: "number", list: "array", dict: "object", type(None): "null"}.get(type(v), type(v).__name__)
    return ("an " if name[0] in "aeiou" else "a ") + name


def _err(code: str, message: str) -> dict:
    return {"code": code, "message": message}


def _json_id(v):
    """An id as JSON can carry it (Parquet/CSV values that are not JSON types become strings)."""
    if v is None or isinstance(v, (str, bool, int)):
        return v
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else str(v)
    return str(v)


def _lines(path: Path, start: int) -> Iterator[tuple[bytes, int]]:
    """(line without its newline, offset after it) from byte ``start``; lines end at b'\\n' only (a
    U+2028 inside a text does not split it), a final line without a newline counts."""
    for raw, pos in _lines_keep(path, start):
        yield raw.removesuffix(b"\n").removesuffix(b"\r"), pos


def read_jsonl(path: Path, text_field: str, id_field: str | None, start: int = 0, line0: int = 0) -> Iterator[Record]:
    n = line0
    for raw, pos in _lines(path, start):
        n += 1
        rec = Record(n, cursor=pos)
        try:
            obj = json.loads(raw)
        except UnicodeDecodeError as e:
            rec.error = _err("invalid_utf8", f"line {n} is not UTF-8: {e.reason} at byte {e.start}")
            yield rec
            continue
        except json.JSONDecodeError as e:
            what = "an empty line" if not raw.strip() else f"not valid JSON: {e.msg} (column {e.colno})"
            rec.error = _err("invalid_json", f"line {n} is {what}")
            yield rec
            continue
        if not isinstance(obj, dict):
            rec.error = _err("invalid_json", f"line {n} is {_kind(obj)}, not a JSON object with a {text_field!r} field")
            yield rec
            continue
        if id_field is not None:
            rec.id = _json_id(obj.get(id_field))
        text = obj.get(text_field)
        if text_field not in obj:
            rec.error = _err("missing_field", f"line {n} has no {text_field!r} field")
        elif not isinstance(text, str):
            rec.error = _err("invalid_field", f"line {n}: {text_field!r} is {_kind(text)}, not a string")
        else:
            rec.text = text
        yield rec


def read_txt(path: Path, start: int = 0, line0: int = 0) -> Iterator[Record]:
    n = line0
    for raw, pos in _lines(path, start):
        n += 1
        try:
            yield Record(n, text=raw.decode("utf-8"), cursor=pos)
        except UnicodeDecodeError as e:
            yield Record(n, error=_err("invalid_utf8", f"line {n} is not UTF-8: {e.reason} at byte {e.start}"), cursor=pos)


def _csv_lines(path: Path, start: int, state: list) -> Iterator[str]:
    """Decoded lines for csv.reader (newlines kept: quoted fields may span lines); ``state[0]`` is the
    byte offset after the last line handed out, which is a record boundary each time csv yields a row."""
    for raw, pos in _lines_keep(path, start):
        state[0] = pos
        yield raw.decode("utf-8", errors="surrogateescape")


def _lines_keep(path: Path, start: int) -> Iterator[tuple[bytes, int]]:
    with open(path, "rb") as f:
        f.seek(start)
        pos = start
        for raw in f:
            pos += len(raw)
            if start == 0 and pos == len(raw) and raw.startswith(_BOM):
                raw = raw[len(_BOM):]
            yield raw, pos


def csv_header(path: Path) -> tuple[list[str], int]:
    state = [0]
    try:
        header = next(csv.reader(_csv_lines(path, 0, state)))
    except StopIteration:
        raise InputError(f"{path}: empty CSV file (expected a header row)") from None
    except csv.Error as e:
        raise InputError(f"{path}: bad CSV header: {e}") from None
    return header, state[0]


def read_csv(path: Path, text_field: str, id_field: str | None, start: int = 0, line0: int = 0) -> Iterator[Record]:
    header, after_header = csv_header(path)
    if text_field not in header:
        raise InputError(f"{path}: no {text_field!r} column in the CSV header ({', '.join(header)}); give --text-field")
    ti = header.index(text_field)
    ii = header.index(id_field) if id_field is not None and id_field in header else None
    state = [max(start, after_header)]
    reader = csv.reader(_csv_lines(path, state[0], state))
    n = line0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            n += 1
            yield Record(n, error=_err("invalid_csv", f"row {n}: {e}"), cursor=state[0])
            continue
        n += 1
        rec = Record(n, cursor=state[0])
        if ii is not None and ii < len(row):
            rec.id = _unescape(row[ii])
        if ti >= len(row):
            rec.error = _err("missing_field", f"row {n} has {len(row)} fields; {text_field!r} is field {ti + 1}")
        else:
            text = _unescape(row[ti])
            if text is None:
                rec.error = _err("invalid_utf8", f"row {n}: {text_field!r} is not UTF-8")
            else:
                rec.text = text
        yield rec


def _unescape(s: str) -> str | None:
    """Undo surrogateescape; None where the bytes were not UTF-8."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return None


def _pyarrow_parquet():
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("reading Parquet needs pyarrow: pip install 'zhie[batch]'") from None
    return pq


def read_parquet(path: Path, text_field: str, id_field: str | None, start: int = 0, line0: int = 0) -> Iterator[Record]:
    pq = _pyarrow_parquet()
    try:
        f = pq.ParquetFile(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several kinds for a file that is not Parquet
        raise InputError(f"{path}: not a Parquet file ({e})") from None
    names = f.schema_arrow.names
    if text_field not in names:
        raise InputError(f"{path}: no {text_field!r} column ({', '.join(names)}); give --text-field")
    cols = [text_field] + ([id_field] if id_field is not None and id_field in names and id_field != text_field else [])
    # start at the row group that holds row ``start``
    row, groups, seen = 0, [], 0
    for g in range(f.num_row_groups):
        n = f.metadata.row_group(g).num_rows
        if seen + n > start:
            groups.append(g)
        else:
            row += n  # rows of the groups skipped whole
        seen += n
    n = line0
    for batch in f.iter_batches(batch_size=1024, row_groups=groups, columns=cols) if groups else []:
        texts = batch.column(0).to_pylist()
        ids = batch.column(1).to_pylist() if len(cols) > 1 else (texts if id_field == text_field else [None] * len(texts))
        for t, i in zip(texts, ids):
            row += 1
            if row <= start:
                continue
            n += 1
            rec = Record(n, id=_json_id(i), cursor=row)
            if t is None:
                rec.error = _err("missing_field", f"row {n}: {text_field!r} is null")
            elif not isinstance(t, str):
                rec.error = _err("invalid_field", f"row {n}: {text_field!r} is {_kind(t)}, not a string")
            else:
                rec.text = t
            yield rec


def open_reader(path: str | Path, fmt: str, text_field: str = "text", id_field: str | None = "id", start: int = 0,
                line0: int = 0) -> Iterator[Record]:
    """Records of ``path`` from cursor ``start``, numbered from ``line0 + 1``. Raises InputError at once
    (not on first iteration) for a missing file or a missing column."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if fmt == "jsonl":
        return read_jsonl(path, text_field, id_field, start, line0)
    if fmt == "txt":
        return read_txt(path, start, line0)
    if fmt == "csv":
        header, _ = csv_header(path)
        if text_field not in header:
            raise InputError(f"{path}: no {text_field!r} column in the CSV header ({', '.join(header)}); give --text-field")
        return read_csv(path, text_field, id_field, start, line0)
    if fmt == "parquet":
        pq = _pyarrow_parquet()
        try:
            names = pq.ParquetFile(path).schema_arrow.names
        except Exception as e:  # noqa: BLE001
            raise InputError(f"{path}: not a Parquet file ({e})") from None
        if text_field not in names:
            raise InputError(f"{path}: no {text_field!r} column ({', '.join(names)}); give --text-field")
        return read_parquet(path, text_field, id_field, start, line0)
    raise InputError(f"unknown format {fmt!r}")
