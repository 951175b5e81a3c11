"""What both engines share: the job, its batches, the model call, the output lines and the resumable writer.

Determinism is what makes ``--resume`` and ``--engine ray`` write the same bytes as one uninterrupted
local run. The models quantise activations per batch (dynamic INT8), so a text's scores depend on the
texts it shares a model call with: batches are therefore a pure function of the input, cut greedily
by a character budget from the first line (:func:`batches`), and every engine, every resumed run,
every worker sends exactly those batches to the model. A resumed run restarts at a batch boundary,
so the batches after it are the ones the uninterrupted run made.

Output commits: whole batches' lines are appended and fsync'd, then a small progress record (lines
done, output bytes, input cursor) replaces the previous one atomically (write, fsync, rename, fsync
the folder). After a kill at any moment the record names a prefix of the output that is complete;
``--resume`` cuts the output back to it (dropping a torn or uncommitted tail) and reads on from the
record's input cursor.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..tasks.results import SERIALIZERS, dumps
from .io import InputError, Record, open_reader

PROGRESS_SUFFIX = ".progress"
PROGRESS_FORMAT = "zhie-batch-progress/1"


class JobError(ValueError):
    """A job that cannot start or resume (bad arguments, an output that is not this job's): a message, no traceback."""


@dataclass
class JobSpec:
    task: str  # ner | sentiment | extract
    input: str
    output: str
    format: str
    text_field: str = "text"
    id_field: str | None = "id"
    schema: object = None  # extract: the schema as the user wrote it (JSON)
    threshold: float | None = None
    model: str = ""  # bundled name or folder; "" = the task's bundled model
    window: int = 128  # NER windows, as the server's ZHIE_WINDOW / ZHIE_OVERLAP
    overlap: int = 32
    batch_chars: int = 16384  # as the server's ZHIE_BATCH_CHARS
    max_batch_items: int = 256
    max_text_chars: int = 1_000_000  # as the server's ZHIE_MAX_TEXT_CHARS
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.task not in SERIALIZERS:
            raise JobError(f"--task {self.task!r}: expected one of {', '.join(SERIALIZERS)}")
        if self.task == "extract" and self.schema is None:
            raise JobError("--task extract needs --schema JSON")
        if self.task != "extract" and (self.schema is not None or self.threshold is not None):
            raise JobError("--schema and --threshold are for --task extract only")
        for name in ("batch_chars", "max_batch_items", "max_text_chars"):
            if getattr(self, name) < 1:
                raise JobError(f"--{name.replace('_', '-')} must be at least 1")
        self.model = self.model or self.task

    def parsed_schema(self):
        from ..tasks.schema import SchemaError, parse_schema

        try:
            return parse_schema(self.schema)
        except SchemaError as e:
            raise JobError(f"--schema: {e}") from None

    def records(self, start: int = 0, line0: int = 0) -> Iterator[Record]:
        """The input's records from ``start``, a text over the limit turned into its error as the API words it."""
        try:
            recs = open_reader(self.input, self.format, self.text_field, self.id_field, start, line0)
        except InputError as e:
            raise JobError(str(e)) from None
        limit = self.max_text_chars
        for r in recs:
            if r.text is not None and len(r.text) > limit:
                r.error = {"code": "text_too_long",
                           "message": f"text has {len(r.text)} characters; the limit is {limit} per text (ZHIE_MAX_TEXT_CHARS)"}
                r.text = None
            yield r

    def fingerprint(self) -> dict:
        """What must not change between a run and its resumption: the input (path, size, a hash of its
        first MiB), every argument that shapes the output, and the model files."""
        p = Path(self.input)
        st = p.stat()
        with open(p, "rb") as f:
            head = hashlib.sha256(f.read(1 << 20)).hexdigest()[:16]
        d = {k: v for k, v in asdict(self).items() if k not in ("output", "extra")}
        d["input"] = str(p.resolve())
        d["input_bytes"] = st.st_size
        d["input_head"] = head
        d["model_files"] = _model_identity(self.task, self.model)
        return d


def _model_identity(task: str, model: str) -> str:
    from ..models.bundle import load_bundle

    b = load_bundle(model, task=task)
    h = hashlib.sha256()
    for name in ("config.json", "vocab.txt"):
        f = Path(b.path) / name
        if f.is_file():
            h.update(f.read_bytes())
    h.update(str(Path(b.onnx_path).stat().st_size).encode())
    return h.hexdigest()[:16]


@dataclass(slots=True)
class Batch:
    records: list[Record]
    texts: list[str]  # of the records without an error, in order
    chars: int  # characters of its texts
    start: int  # input cursor before the first record
    end: int  # input cursor after the last record
    line0: int  # line number before the first record


def batches(records: Iterable[Record], spec: JobSpec, start: int = 0, line0: int = 0) -> Iterator[Batch]:
    """Consecutive records grouped greedily: a batch closes before the text that would take it past
    ``batch_chars`` (extract: characters x schema types, as the server counts) or past
    ``max_batch_items`` texts; a text longer than the budget goes alone. Lines with errors ride along
    in the batch they fall in (they cost nothing), at most 4096 records a batch."""
    weight = 1
    if spec.task == "extract":
        weight = spec.parsed_schema().size
    cur: list[Record] = []
    texts: list[str] = []
    chars = budget = 0
    b_start, b_line0 = start, line0
    for r in records:
        if r.text is not None:
            size = max(1, len(r.text)) * weight
            if texts and (budget + size > spec.batch_chars or len(texts) >= spec.max_batch_items):
                yield Batch(cur, texts, chars, b_start, cur[-1].cursor, b_line0)
                b_start, b_line0 = cur[-1].cursor, cur[-1].line
                cur, texts, chars, budget = [], [], 0, 0
            texts.append(r.text)
            chars += len(r.text)
            budget += size
        cur.append(r)
        if len(cur) >= 4096:
            yield Batch(cur, texts, chars, b_start, r.cursor, b_line0)
            b_start, b_line0 = r.cursor, r.line
            cur, texts, chars, budget = [], [], 0, 0
    if cur:
        yield Batch(cur, texts, chars, b_start, cur[-1].cursor, b_line0)


class Predictor:
    """One task's model, loaded once; ``run(texts)`` returns each text's result as the API's JSON text."""

    def __init__(self, spec: JobSpec, threads: int | None = None):
        self.spec = spec
        task = spec.task
        if task == "ner":
            from ..tasks.ner import NerOptions, NerTagger

            m = NerTagger.load(spec.model, threads=threads, options=NerOptions(window=spec.window, overlap=spec.overlap))
            self._predict = m.predict
        elif task == "sentiment":
            from ..tasks.sentiment import SentimentClassifier

            m = SentimentClassifier.load(spec.model, threads=threads)
            self._predict = m.predict
        else:
            from ..tasks.extract import SchemaExtractor

            m = SchemaExtractor.load(spec.model, threads=threads)
            schema, th = spec.parsed_schema(), spec.threshold
            self._predict = lambda texts: m.predict(texts, schema, th)
        self.model = m
        self._json = SERIALIZERS[task]

    def run(self, texts: list[str]) -> list[str | dict]:
        """JSON text of each result; a text the model fails on gets an error dict instead (the batch is
        retried one text at a time so the others still get their answers)."""
        if not texts:
            return []
        try:
            return [dumps(self._json(r)) for r in self._predict(texts)]
        except Exception:  # noqa: BLE001 - one bad text must not stop a corpus
            if len(texts) == 1:
                import traceback

                msg = traceback.format_exc(limit=1).strip().splitlines()[-1]
                return [{"code": "model_error", "message": f"the model failed on this text: {msg}"}]
            return [x for t in texts for x in self.run([t])]


def render(batch: Batch, results: list[str | dict]) -> str:
    """The batch's output lines: ``{"line", "id", "result"}`` or ``{"line", "id", "error"}``, in input order."""
    out = []
    it = iter(results)
    for r in batch.records:
        head = f'{{"line":{r.line},"id":{dumps(r.id)},'
        if r.error is not None:
            out.append(f'{head}"error":{dumps(r.error)}}}\n')
            continue
        res = next(it)
        if isinstance(res, dict):
            out.append(f'{head}"error":{dumps(res)}}}\n')
        else:
            out.append(f'{head}"result":{res}}}\n')
    return "".join(out)


def batch_errors(batch: Batch, results: list[str | dict]) -> int:
    return sum(r.error is not None for r in batch.records) + sum(isinstance(x, dict) for x in results)


# -- the output and its progress record ------------------------------------------------------------
def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass
class State:
    lines: int = 0
    output_bytes: int = 0
    cursor: int = 0
    errors: int = 0
    chars: int = 0
    complete: bool = False


class Output:
    """The output file and its progress record ``OUTPUT.progress``.

    ``resume``: continue a run of the same job (the record says where), or start one when there is
    nothing yet; without it an existing output is refused unless ``overwrite``."""

    def __init__(self, spec: JobSpec, resume: bool = False, overwrite: bool = False, commit_s: float = 1.0):
        self.path = Path(spec.output)
        self.progress_path = self.path.with_name(self.path.name + PROGRESS_SUFFIX)
        self.fingerprint = spec.fingerprint()
        self.commit_s = commit_s
        if Path(spec.input).resolve() == self.path.resolve():
            raise JobError(f"--output {self.path} is the input file")
        self.state = State()
        exists = self.path.exists()
        if resume and self.progress_path.exists():
            self.state = self._read_progress()
        elif resume and exists and self.path.stat().st_size > 0:
            raise JobError(f"--resume: {self.path} exists but {self.progress_path.name} does not, so what it holds is "
                           "not known; move it away or pass --overwrite instead of --resume")
        elif exists and not resume and not overwrite:
            raise JobError(f"{self.path} exists: pass --resume to continue that run or --overwrite to start again")
        self.resumed_from = self.state.lines
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.state.lines == 0:  # a fresh start: the record first, so a kill from here on resumes from nothing
            self._write_progress()
        if self.state.output_bytes == 0:
            self.f = open(self.path, "wb")
        else:
            self.f = open(self.path, "r+b")
            size = os.fstat(self.f.fileno()).st_size
            if size < self.state.output_bytes:
                raise JobError(f"--resume: {self.path} has {size} bytes, fewer than the {self.state.output_bytes} its "
                               "progress record says were committed; it was changed by something else")
            self.f.truncate(self.state.output_bytes)  # drop a torn or uncommitted tail
            self.f.seek(self.state.output_bytes)
            os.fsync(self.f.fileno())
        self._last_commit = time.monotonic()
        self._dirty = False

    def _read_progress(self) -> State:
        try:
            rec = json.loads(self.progress_path.read_text(encoding="utf-8"))
            st = State(**rec["state"])
            old = rec["fingerprint"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise JobError(f"--resume: {self.progress_path} is unreadable ({e}); start again with --overwrite") from None
        if rec.get("format") != PROGRESS_FORMAT:
            raise JobError(f"--resume: {self.progress_path} is not a zhie batch progress record")
        if old != self.fingerprint:
            diff = sorted(k for k in set(old) | set(self.fingerprint) if old.get(k) != self.fingerprint.get(k))
            raise JobError(f"--resume: this is not the job {self.path} was written by: {', '.join(diff)} differ "
                           f"(was {', '.join(f'{k}={old.get(k)!r}' for k in diff)}); rerun with the same arguments or --overwrite")
        return st

    def _write_progress(self) -> None:
        tmp = self.progress_path.with_name(self.progress_path.name + ".tmp")
        body = json.dumps({"format": PROGRESS_FORMAT, "state": asdict(self.state), "fingerprint": self.fingerprint},
                          ensure_ascii=False, indent=1)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.progress_path)
        _fsync_dir(self.progress_path.parent)

    def write(self, lines: int, end: int, chars: int, text: str, errors: int) -> None:
        """Append one batch's ``lines`` output lines; ``end``: the input cursor after them."""
        data = text.encode("utf-8")
        self.f.write(data)
        s = self.state
        s.lines += lines
        s.output_bytes += len(data)
        s.cursor = end
        s.errors += errors
        s.chars += chars
        self._dirty = True
        if time.monotonic() - self._last_commit >= self.commit_s:
            self.commit()

    def commit(self) -> None:
        if not self._dirty:
            return
        self.f.flush()
        os.fsync(self.f.fileno())  # the lines first, then the record that vouches for them
        self._write_progress()
        self._last_commit = time.monotonic()
        self._dirty = False

    def finish(self) -> None:
        self.state.complete = True
        self._dirty = True
        self.commit()
        self.f.close()

    def close(self) -> None:
        self.commit()
        self.f.close()


class ProgressBar:
    """A tqdm bar on stderr over the input (bytes for the line formats, rows for Parquet): lines,
    errors, characters/s and the ETA."""

    def __init__(self, spec: JobSpec, state: State, enabled: bool = True):
        self.t0 = time.perf_counter()
        self.chars = 0
        self.state = state
        self.bar = None
        if not enabled:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            raise JobError("the progress bar needs tqdm: pip install 'zhie[batch]' (or pass --quiet)") from None
        import sys

        total = _input_total(spec)
        tty = sys.stderr.isatty()
        self.bar = tqdm(total=total, initial=min(state.cursor, total), file=sys.stderr, dynamic_ncols=True,
                        mininterval=0.5 if tty else 10.0, unit="B" if spec.format != "parquet" else "row",
                        unit_scale=spec.format != "parquet", smoothing=0.1,
                        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt}{postfix} [{elapsed}<{remaining}]", desc=f"zhie batch {spec.task}")
        self._pos = min(state.cursor, total)
        self._post()

    def _post(self) -> None:
        dt = max(time.perf_counter() - self.t0, 1e-9)
        s = self.state
        self.bar.set_postfix_str(f"{s.lines:,} lines, {s.errors:,} errors, {self.chars / dt:,.0f} chars/s", refresh=False)

    def update(self, end: int, chars: int) -> None:
        self.chars += chars
        if self.bar is None:
            return
        self._post()
        self.bar.update(max(0, end - self._pos))
        self._pos = max(self._pos, end)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _input_total(spec: JobSpec) -> int:
    if spec.format == "parquet":
        from .io import _pyarrow_parquet

        return _pyarrow_parquet().ParquetFile(spec.input).metadata.num_rows
    return os.path.getsize(spec.input)
