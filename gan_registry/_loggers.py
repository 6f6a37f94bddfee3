"""The core's loggers: metrics.jsonl (every run) and metrics.csv (`--log csv`).

Both write each log line and each evaluation as it comes, so a run stopped at any point leaves a log up to its
last line; a resumed run appends to the same files.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any


def _write_error(path: Path, error: OSError):
    from .checkpoint import write_error

    return write_error(str(path), error)


class JsonlLog:
    """metrics.jsonl: one JSON object per log line, and one per evaluation."""

    def on_evaluate(self, run: Any, record: dict[str, Any]) -> None:
        self.on_log(run, record)

    def on_log(self, run: Any, record: dict[str, Any]) -> None:
        path = run.run_dir / "metrics.jsonl"
        try:
            with open(path, "a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as error:
            raise _write_error(path, error) from None


class CsvLog:
    """metrics.csv: a row per log line and per evaluation, a column per value ever logged.

    Evaluations add columns mid-run; the file is then rewritten once with the wider header (as Lightning's
    CSVLogger does), so spreadsheets and pandas read one rectangular table.
    """

    def __init__(self) -> None:
        self.columns: list[str] | None = None

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
            with open(path, "a", newline="") as f:
                csv.DictWriter(f, self.columns).writerow(record)
        except OSError as error:
            raise _write_error(path, error) from None

    @staticmethod
    def _existing_columns(path: Path) -> list[str]:
        if not path.exists():
            return []
        with open(path, newline="") as f:
            return next(csv.reader(f), [])

    def _rewrite(self, path: Path, columns: list[str]) -> None:
        rows = []
        if path.exists():
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(rows)
        tmp.replace(path)
        self.columns = columns
