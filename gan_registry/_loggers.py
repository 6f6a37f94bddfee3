"""The core's loggers: metrics.jsonl (every run) and metrics.csv (`--log csv`).

Both write each log line and each evaluation as it comes, so a run stopped at any point leaves a log up to its
last line; a resumed run appends to the same files. A run killed -9 can leave a torn last line, and lines of the
steps after its last checkpoint, which the resumed run logs again: a resume first cuts the file back to the
checkpoint's step.

Layer: services and duties (docs/architecture.md).
"""
from __future__ import annotations

import csv
import io
import json
import os
import stat
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ._files import replacing, write_error


def _write_error(path: Path, error: OSError):
    return write_error(str(path), error)


def _append(path: Path, line: bytes) -> None:
    """Append one line; a file that does not end with a newline (torn by a kill) gets one first, so that the
    torn line and this one stay two lines. Only a regular file is appended to: a FIFO planted in a run folder would
    block, and a link would write elsewhere."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    os.set_blocking(fd, True)
    with os.fdopen(fd, "a+b") as f:
        if f.seek(0, os.SEEK_END):
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                line = b"\n" + line
        f.write(line)


def _replace(path: Path, data: bytes) -> None:
    """Write `path` atomically, as every file a run writes is (a kill meanwhile leaves the old file; a full disk is
    one line and exit 1)."""
    with replacing(path, str(path), kept="") as (f, _):
        f.write(data)


def _cut_back(run: Any, name: str, records: Callable[[bytes], Iterable[tuple[bytes, int | None]]]) -> None:
    """On a resume, keep of the log `name` the records (bytes, step) whose step is none or at most the
    checkpoint's; `records` leaves out a torn tail. A fresh run (step 0) leaves the file alone."""
    path = run.run_dir / name
    if run.step == 0 or not path.is_file():  # a FIFO or folder there would block or fail the read
        return
    try:
        data = path.read_bytes()
        kept = b"".join(chunk for chunk, step in records(data) if step is None or step <= run.step)
        if kept != data:
            _replace(path, kept)
    except OSError as error:
        raise _write_error(path, error) from None


def _step(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _json_line(line: bytes) -> Any:
    """The JSON value of one line, or ValueError for a torn or corrupt one (deep nesting included)."""
    try:
        return json.loads(line)
    except RecursionError:
        raise ValueError("nested too deeply") from None


class JsonlLog:
    """metrics.jsonl: one JSON object per log line, and one per evaluation."""

    def on_train_start(self, run: Any) -> None:
        _cut_back(run, "metrics.jsonl", self._records)

    @staticmethod
    def _records(data: bytes) -> Iterator[tuple[bytes, int | None]]:
        """Each line's bytes and its step (none where it has no int "step"); a torn last line left out."""
        lines = data.split(b"\n")
        lines.pop()  # b"" after a final newline; otherwise a line torn mid-write
        for i, line in enumerate(lines):
            try:
                record = _json_line(line)
            except ValueError:
                if i == len(lines) - 1:
                    return  # torn however it ends
                record = None  # corrupt mid-file: not ours to judge, kept as it is
            step = _step(record.get("step")) if isinstance(record, dict) else None
            yield line + b"\n", step

    def on_evaluate(self, run: Any, record: dict[str, Any]) -> None:
        self.on_log(run, record)

    def on_log(self, run: Any, record: dict[str, Any]) -> None:
        path = run.run_dir / "metrics.jsonl"
        try:
            _append(path, (json.dumps(record) + "\n").encode())
        except OSError as error:
            raise _write_error(path, error) from None


class CsvLog:
    """metrics.csv: a row per log line and per evaluation, a column per value ever logged.

    Evaluations add columns mid-run; the file is then rewritten once with the wider header (as Lightning's
    CSVLogger does), so spreadsheets and pandas read one rectangular table.
    """

    def __init__(self) -> None:
        self.columns: list[str] | None = None

    def on_train_start(self, run: Any) -> None:
        self.columns = None  # read again from the file, as it is now
        _cut_back(run, "metrics.csv", self._records)

    @staticmethod
    def _records(data: bytes) -> Iterator[tuple[bytes, int | None]]:
        """Each row's own bytes (a quoted value may span lines) and its step; the header's step is none."""
        consumed: list[str] = []

        def lines() -> Iterator[str]:
            for line in io.StringIO(data.decode("utf-8", "surrogateescape"), newline=""):
                consumed.append(line)
                yield line

        step_at = None
        try:
            for row in csv.reader(lines(), strict=True):
                chunk = "".join(consumed)
                consumed.clear()
                if not chunk.endswith(("\n", "\r")):
                    return  # torn mid-write
                if step_at is None:
                    step_at = row.index("step") if "step" in row else -1
                    yield chunk.encode("utf-8", "surrogateescape"), None
                    continue
                step = _int(row[step_at]) if 0 <= step_at < len(row) else None
                yield chunk.encode("utf-8", "surrogateescape"), step
        except csv.Error:
            return  # a quote torn open by a kill (or the rest unreadable): cut there

    def on_evaluate(self, run: Any, record: dict[str, Any]) -> None:
        self.on_log(run, record)

    def on_log(self, run: Any, record: dict[str, Any]) -> None:
        path = run.run_dir / "metrics.csv"
        try:
            if self.columns is None:
                self.columns = self._existing_columns(path)
            new = [key for key in record if key not in self.columns]
            if new or not path.exists():
                self._rewrite(path, self.columns + new)
            row = io.StringIO()
            csv.DictWriter(row, self.columns).writerow(record)
            _append(path, row.getvalue().encode())
        except OSError as error:
            raise _write_error(path, error) from None

    @staticmethod
    def _existing_columns(path: Path) -> list[str]:
        if not path.exists():
            return []
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
            return next(csv.reader(f), [])

    def _rewrite(self, path: Path, columns: list[str]) -> None:
        rows = []
        if path.exists():
            with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
                rows = list(csv.DictReader(f))
        table = io.StringIO()
        writer = csv.DictWriter(table, columns)
        writer.writeheader()
        writer.writerows(rows)
        _replace(path, table.getvalue().encode("utf-8", "surrogateescape"))
        self.columns = columns
