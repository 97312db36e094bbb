"""The record of one benchmark run, and its JSON Lines files (docs/results/<benchmark>.jsonl).

A record is one JSON object:
    kind       "benchmark" (a re-runnable tools/benchmark.py command), "study" (a one-off study,
               e.g. through tools/tune.py) or "earlier" (a section kept as Markdown, verbatim)
    benchmark  its file's name: speed, inference, metrics, data, accuracy, memory, studies, earlier
    series     what is measured, less the machine ("Accuracy under one training budget (full)"), and
    variant    the command's options that change what is measured ("--datasets drive", or ""):
               runs of one series and variant on one machine kind compare
    title, when (UTC ISO, or a date for runs before the records), command
    machine    {cpu, cores, gpu, torch, python, text}; load {before, after} (1-minute averages) or None
    wall_s     seconds the measuring took, the command less its start-up (None where not recorded)
    settings   the options the run was given
    tables     [{caption, columns, align, rows, after}]: rows are lists of cells as printed
    notes      the bullet notes; text: further Markdown (a reading added later), may be ""
    header     studies only: their Command(s) / Machine / Date block as written
A record of kind "earlier" holds a section of the page before the records as `markdown`, verbatim
(with title, when, command and machine where the section named them).
"""

from __future__ import annotations

import datetime
import json
import shlex
from pathlib import Path
from typing import Any, NamedTuple

from .machine import machine_info, machine_kind

Record = dict[str, Any]


class Result(NamedTuple):
    """What a benchmark measured: the record less the run's command, machine, date and wall time."""

    series: str
    title: str
    tables: list[dict[str, Any]]
    notes: list[str]
    settings: dict[str, Any]
    load: tuple[float, float] | None = None


def table(
    columns: list[str], rows: list[list[str]], align: str | None = None, caption: str = "", after: str = ""
) -> dict[str, Any]:
    """A record's table: column names, rows of printed cells, alignment per column ("l" / "r";
    default: the first left, the rest right), Markdown before (caption) and after it."""
    align = align or "l" + "r" * (len(columns) - 1)
    return {"caption": caption, "columns": columns, "align": align, "rows": rows, "after": after}


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# options that leave what a run measures unchanged (how it is run, or already in its series), with
# the number of values each takes
SAME_MEASUREMENT = {
    "--write": 0, "--quick": 0, "--config-length": 0, "--device": 1, "--jobs": 1, "--workers": 1, "--repeats": 1,
    "--warmup": 1,
}  # fmt: skip


def variant_of(command: str) -> str:
    """The options of a `python tools/benchmark.py NAME ...` command that change what it measures."""
    argv, kept = shlex.split(command)[3:], []
    while argv:
        option = argv.pop(0)
        if option in SAME_MEASUREMENT:
            del argv[: SAME_MEASUREMENT[option]]
        else:
            kept.append(option)
    return shlex.join(kept)


def make_record(benchmark: str, result: Result, command: str, wall_s: float | None) -> Record:
    """The record of a run on this machine, now."""
    load = None if result.load is None else {"before": round(result.load[0], 2), "after": round(result.load[1], 2)}
    return {
        "kind": "benchmark",
        "benchmark": benchmark,
        "series": result.series,
        "variant": variant_of(command),
        "title": result.title,
        "when": now(),
        "command": command,
        "machine": machine_info(),
        "load": load,
        "wall_s": None if wall_s is None else round(wall_s, 1),
        "settings": result.settings,
        "tables": result.tables,
        "notes": result.notes,
        "text": "",
    }


def read(path: Path) -> list[Record]:
    """The records of a JSONL file, in the order they were written."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append(path: Path, record: Record) -> None:
    """Appends one record to `path` as one line (created with its folder if absent)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_all(folder: Path) -> dict[str, list[Record]]:
    """{file stem: records} of every *.jsonl in `folder`, by name."""
    return {path.stem: read(path) for path in sorted(folder.glob("*.jsonl"))}


def newest(records: list[Record]) -> list[Record]:
    """The newest record of each (series, variant, machine kind), in the order each first appears;
    of two with the same date, the one written later."""
    chosen: dict[tuple[str, str, str], Record] = {}
    for record in records:
        key = (record["series"], record.get("variant", ""), machine_kind(record["machine"]))
        if key not in chosen or record["when"] >= chosen[key]["when"]:
            chosen[key] = record
    return list(chosen.values())
