"""docs/benchmarks.md from docs/results/*.jsonl alone: an intro, the goals' status, one section per
benchmark with the newest run of each series per machine kind, one section per study, and the
earlier results kept verbatim. Deterministic: the same records give the same page, byte for byte."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import DOC, REPO, RESULTS
from .goals import GOALS, goal_rows, variant_words
from .machine import machine_kind
from .records import Record, newest, read_all

RENDER = "python tools/benchmark.py render"
# the benchmarks' files, in page order, with their section headings
BENCHMARKS = {
    "speed": "Speed: training and inference img/s, peak memory, GFLOPs (`speed`, `models`)",
    "inference": "Inference: Segmenter.predict against plain MONAI and smp loops (`inference`)",
    "metrics": "Metrics: SegMetrics against torchmetrics and smp.metrics (`metrics`)",
    "data": "Data: the COCO pipeline and the volume pipeline, with their caches and without (`data`)",
    "accuracy": "Accuracy: segattn against its peers under one training budget (`accuracy`, `ablation`)",
    "memory": "Memory: the sliding window on large images (`memory`)",
    "volumes": "Volumes: 3-D sliding window against MONAI, and memory on a large volume (`volumes`)",
    "volume_accuracy": "Volume accuracy: 3-fold CV on Hippocampus at equal wall time (`volume-accuracy`)",
    "serving": "Serving: `segattn serve` under concurrent clients, with and without dynamic batching (`serving`)",
}
STUDIES, EARLIER = "studies", "earlier"
INTRO = f"""# Benchmarks

This page is generated: `{RENDER}` writes it from the records in docs/results/*.jsonl
(one JSON object per run: its command, machine, date, settings and figures), and
`python tools/benchmark.py <name> --write` appends a run's record and renders it again. Do not edit
it by hand; every figure here stands under the command that printed it. Each benchmark shows its
newest run per series (what was measured, with which options) and machine kind (the CPU, each GPU
model); the earlier runs stay in its records file. After the benchmarks come the studies (one-off
investigations, most through tools/tune.py, from docs/results/studies.jsonl; their searches' runs are in
docs/tune/*.jsonl, and `python tools/tune.py summarize FILE` prints their tables), then the earlier
results: sections of the page before the records whose figures are not rows of a table."""


def markdown_table(table: dict[str, Any]) -> str:
    """A record's table as Markdown: header, alignment row, one line per row."""
    align = "|" + "|".join("---:" if a == "r" else "---" for a in table["align"]) + "|"
    lines = ["| " + " | ".join(table["columns"]) + " |", align]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in table["rows"])])


def body(record: Record) -> str:
    """The record's figures: each table between its caption and what follows it, the notes as
    bullets, then any further text."""
    parts = []
    for table in record["tables"]:
        parts += [table["caption"], markdown_table(table), table["after"]]
    parts.append("\n".join(f"- {note}" for note in record["notes"]))
    parts.append(record["text"])
    return "\n\n".join(part for part in parts if part)


def run_header(record: Record) -> str:
    """Command, machine and date lines (a study's own header where it has one)."""
    if record.get("header"):
        return record["header"]
    return f"Command: `{record['command']}`  \nMachine: {record['machine']['text']}  \nDate: {record['when']}"


def heading(record: Record) -> str:
    """The run's title, its options that change what it measures, and its GPU where the title lacks it."""
    gpu = record["machine"]["gpu"] if record["kind"] == "benchmark" else None
    return record["title"] + variant_words(record) + (f" ({gpu})" if gpu and gpu not in record["title"] else "")


def section(record: Record, level: str = "##") -> str:
    """A run as a page section: heading, command, machine, date, figures."""
    heading_line = f"{level} {heading(record)}"
    return "\n\n".join([heading_line, run_header(record), body(record)]) + "\n"


def earlier_runs(records: list[Record], shown: list[Record], path: str) -> str:
    """The line (and list) of the runs of a records file that the page does not show."""
    rest = [r for r in records if not any(r is s for s in shown)]
    if not rest:
        return f"Earlier runs in {path}: none."
    lines = [f"Earlier runs in {path}: {len(rest)}, not shown here (each with its figures in the file):", ""]
    lines += [f"- {r['when'][:10]}, {machine_kind(r['machine'])}: {r['title']}, `{r['command']}`" for r in rest]
    return "\n".join(lines)


def goals_section(records: dict[str, list[Record]]) -> str:
    """The goals (goals.GOALS) against the newest run holding each figure."""
    lines = [
        "## Where segattn stands against its goals",
        "",
        "Computed from the records below by goals.py (tools/benchmarks/goals.py): for each goal, the newest run per "
        "series and machine kind that holds its figure.",
        "",
        "| goal | run | figure | target | status |",
        "|---|---|---|---:|---|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in goal_rows(GOALS, records)]
    return "\n".join(lines) + "\n"


def render(folder: Path = RESULTS) -> str:
    """The page from the records of `folder`."""
    records = read_all(folder)
    where = os.path.relpath(folder, REPO)
    sections = [INTRO + "\n", goals_section(records)]
    for name, heading in BENCHMARKS.items():
        if name not in records:
            continue
        shown = newest(records[name])
        sections.append(f"## {heading}\n\n" + "\n".join(section(r, "###") for r in shown) + "\n"
                        + earlier_runs(records[name], shown, f"{where}/{name}.jsonl") + "\n")  # fmt: skip
    sections += [section(record) for record in records.get(STUDIES, [])]
    if records.get(EARLIER):
        intro = (
            f"## Earlier results\n\nSections of the page before it was generated whose figures are not rows of a "
            f'table, kept as they were written (records of kind "earlier" in {where}/{EARLIER}.jsonl).\n'
        )
        kept = [f"### {r['title']}\n\n{r['markdown']}\n" for r in records[EARLIER]]
        sections.append("\n".join([intro, *kept]))
    return "\n".join(sections)


def write(folder: Path = RESULTS, doc: Path = DOC) -> Path:
    """Renders the page of `folder`'s records to `doc`."""
    doc.write_text(render(folder))
    return doc
