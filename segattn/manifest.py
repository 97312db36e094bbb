"""The manifest of `segattn infer`: one JSON line per input that was segmented or failed, written
as the job goes, so that a job over many files can be audited and its failures listed.

`<output>/manifest.jsonl` only grows: a re-run appends its own lines (the newest line of an input
is its state). Each record: {"job": the run's id, "rank": the process that did it, "input",
"output": the label map's path (null when failed), "shape": the input's H×W or D×H×W (null when
failed), "seconds": the wall time between this input's result and the one before it in its
process (reading and the network; writing overlaps it), "status": "done" | "failed", "error":
the one-line reason (null when done), "time": UTC, ISO 8601}.

With several processes, each appends to its own part file (`.manifest-<job>-rank<r>.jsonl`, so
that no two processes append to one file, which NFS does not make safe), and the first process
folds the parts into manifest.jsonl when the job ends, or, after a job that was killed, when the
next one starts.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from segattn.errors import InputError

MANIFEST = "manifest.jsonl"
PART_PREFIX = ".manifest-"


def new_job_id() -> str:
    """A short id for one run: the UTC time and a random suffix, e.g. 20261205T0412Z-3fa9c2."""
    return f"{time.strftime('%Y%m%dT%H%MZ', time.gmtime())}-{secrets.token_hex(3)}"


def part_path(folder: str | os.PathLike, job: str, rank: int) -> Path:
    """The part file of one process of a job."""
    return Path(folder) / f"{PART_PREFIX}{job}-rank{rank:05d}.jsonl"


class Manifest:
    """Appends records to a JSON Lines file, each line written whole and flushed at once (from
    any thread): a process killed mid-job leaves every record it made before (at most its last
    line torn, which `read_manifest` skips)."""

    def __init__(self, path: str | os.PathLike, job: str, rank: int = 0) -> None:
        self.path, self.job, self.rank = Path(path), job, rank
        self.file = self.path.open("a", encoding="utf-8")
        self.lock = threading.Lock()

    def add(
        self,
        input: Path,
        status: str,
        output: Path | None = None,
        shape: tuple[int, ...] | None = None,
        seconds: float | None = None,
        error: str | None = None,
    ) -> None:
        """One record: status "done" (with output, shape, seconds) or "failed" (with error)."""
        record = {
            "job": self.job, "rank": self.rank, "input": str(input), "output": None if output is None else str(output),
            "shape": None if shape is None else list(shape), "seconds": None if seconds is None else round(seconds, 4),
            "status": status, "error": error, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }  # fmt: skip
        with self.lock:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def read_manifest(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a manifest (or part) file, in order; a torn last line (a killed process's)
    is left out."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def check_manifest(folder: str | os.PathLike) -> None:
    """An InputError when `folder` holds a manifest.jsonl that segattn did not write (its first
    line is no record of ours): a job appends to its own manifest only, never to a user's file."""
    path = Path(folder) / MANIFEST
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb") as file:
        first = file.readline(64 * 1024)
    try:
        ours = {"job", "input", "status"} <= json.loads(first).keys()
    except (ValueError, AttributeError):
        ours = False
    if not ours:
        raise InputError(
            f"{path}: exists and was not written by segattn; infer records its jobs there; "
            "move it or choose another --output folder"
        )


def fold_parts(folder: str | os.PathLike, job: str | None = None) -> None:
    """Appends the part files in `folder` (of `job`; None: all, e.g. a killed job's) to its
    manifest.jsonl in rank order and removes them."""
    parts = sorted(Path(folder).glob(f"{PART_PREFIX}{job if job else '*'}-rank*.jsonl"))
    if not parts:
        return
    with (Path(folder) / MANIFEST).open("a", encoding="utf-8") as manifest:
        for part in parts:
            manifest.writelines(json.dumps(record) + "\n" for record in read_manifest(part))
    for part in parts:
        part.unlink()
