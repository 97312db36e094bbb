"""The goals segattn is measured against, as data, and their status computed from the
records: each goal names a benchmark, the series whose newest run per machine kind is read, the
table and figure, and the target."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from .machine import machine_kind
from .records import Record, newest

ACCURACY = "Accuracy under one training budget"


class Goal(NamedTuple):
    """One goal. measure: "margin" (points of `row` above the best peer row in `column`; with
    `time_column`, also no slower), "cell" (the value in `row`'s `column`, e.g. a "1.79×" ratio),
    "ratio" (`row` ÷ `peer` in `column`, the smallest over the table's inputs), "below" (the number in
    the first row starting with `row`, in `column`, under the target, in `unit`), "above" (the same,
    at least the target) or "minutes" (the run's wall time). `series` and `row` match by prefix,
    `table` by the caption's text; `command`, where set, by the whole command line (less --write)."""

    goal: str
    benchmark: str
    series: str
    measure: str
    target: float
    table: str = ""
    column: str = ""
    row: str = "segattn"
    peer: str = ""
    time_column: str = ""
    command: str = ""  # only runs of exactly this command (less --write); the page names it while none is
    unit: str = ""  # below: the target's unit


GOALS = [
    Goal("DRIVE vessel Dice ≥ best contender + 1.0 at ≤ its training time", "accuracy", ACCURACY, "margin", 1.0,
         "**drive**", "vessel Dice", time_column="train s"),
    Goal("CamVid val mIoU ≥ best contender", "accuracy", ACCURACY, "margin", 0.0, "**camvid**", "mIoU"),
    Goal("inference img/s ≥ 1.3× MONAI (CPU, whole image)", "inference", "Inference at", "cell", 1.3,
         column="segattn Segmenter.predict is faster by", row="MONAI AttentionUnet"),
    Goal("inference img/s ≥ 1.3× MONAI (network alone, every input size)", "speed", "Speed and memory", "ratio", 1.3,
         column="infer img/s", row="segattn", peer="MONAI AttentionUnet"),
    Goal("the whole CPU accuracy table in ≤ 60 min", "accuracy", f"{ACCURACY} (full)", "minutes", 60,
         command="python tools/benchmark.py accuracy"),
    Goal("`accuracy --quick` in ≤ 10 min", "accuracy", f"{ACCURACY} (quick)", "minutes", 10,
         command="python tools/benchmark.py accuracy --quick"),
    Goal("3-D sliding window volumes/s ≥ 1.3× MONAI sliding_window_inference (CPU)", "volumes",
         "3-D sliding window inference speed", "ratio", 1.3, column="volumes/s", row="segattn Segmenter.predict",
         peer="MONAI sliding_window_inference"),
    Goal("512³ volume, 4 classes, CPU peak memory < 6 GB", "volumes", "3-D volume inference memory", "below", 6,
         column="peak GB", row="512³", unit="GB"),
    Goal("segattn's 3-D recipe (configs/hippocampus.yaml) ≥ best of MONAI AttentionUnet / UNet + 1 "
         "mean Dice at ≤ its train time (3-fold CV, CPU, equal time)", "volume_accuracy",
         "Accuracy on volumes: 3-fold CV", "margin", 1.0, column="mean Dice", row="segattn 3-D",
         time_column="train s"),
    Goal("Hippocampus mean Dice ≥ 89 at configs/hippocampus.yaml's length (GPU; nnU-Net's published level)",
         "volume_accuracy", "Accuracy on volumes: 3-fold CV on Hippocampus, the config's length", "above", 89,
         column="mean Dice", row="segattn 3-D", unit="%",
         command="python tools/benchmark.py volume-accuracy --config-length --contenders 'segattn 3-D'"),
]  # fmt: skip


def number(cell: str) -> float | None:
    """The first number of a printed cell ("74.40 ± 2.28" → 74.4, "1.79×" → 1.79; "–" → None)."""
    found = re.search(r"-?\d[\d,]*(?:\.\d+)?", cell)
    return None if found is None else float(found.group().replace(",", ""))


def find_table(record: Record, goal: Goal) -> dict[str, Any] | None:
    """The record's table the goal reads: the first whose caption holds goal.table, with goal.column."""
    for table in record.get("tables", []):
        if goal.table in table["caption"] and goal.column in table["columns"]:
            return table
    return None


def column_values(table: dict[str, Any], column: str) -> list[tuple[str, float]]:
    """(row name, number) of every row with a number in `column`, the name being the first cell."""
    at = table["columns"].index(column)
    found = [(row[0], number(row[at])) for row in table["rows"]]
    return [(name, value) for name, value in found if value is not None]


def evaluate(goal: Goal, record: Record) -> tuple[str, bool] | None:
    """(the figure in words, met) of the goal on one record; None where the record lacks the figure."""
    if goal.measure == "minutes":
        if record.get("wall_s") is None:
            return None
        minutes = record["wall_s"] / 60
        return f"{minutes:.1f} min", minutes <= goal.target
    table = find_table(record, goal)
    if table is None:
        return None
    values = column_values(table, goal.column)
    if goal.measure == "cell":
        found = [(name, value) for name, value in values if name.startswith(goal.row) and "whole image" in name]
        return (f"{found[0][1]:.2f}× ({found[0][0]})", found[0][1] >= goal.target) if found else None
    if goal.measure in ("below", "above"):
        found = [(name, value) for name, value in values if name.startswith(goal.row)]
        if not found:
            return None
        (name, value), below = found[0], goal.measure == "below"
        return f"{value:g} {goal.unit} ({name})", value < goal.target if below else value >= goal.target
    if goal.measure == "ratio":
        ours = [pair for pair in values if pair[0] == goal.row]
        theirs = [pair for pair in values if pair[0] == goal.peer]
        if not ours or len(ours) != len(theirs):
            return None
        worst = min(a / b for (_, a), (_, b) in zip(ours, theirs, strict=True))
        return f"{worst:.2f}× (smallest over {len(ours)} input size(s))", worst >= goal.target
    rows = dict(values)
    peers = {name: value for name, value in rows.items() if not name.startswith("segattn")}
    if goal.row not in rows or not peers:
        return None
    best = max(peers, key=peers.__getitem__)
    margin = rows[goal.row] - peers[best]
    text = f"{margin:+.2f} points: {goal.row} {rows[goal.row]:.2f}, {best} {peers[best]:.2f}"
    met = margin >= goal.target
    if goal.time_column:
        times = dict(column_values(table, goal.time_column))
        text += f"; {goal.time_column} {times[goal.row]:.0f} against {times[best]:.0f}"
        met = met and times[goal.row] <= times[best]
    return text, met


def goal_rows(goals: list[Goal], records: dict[str, list[Record]]) -> list[list[str]]:
    """[goal, run (benchmark, series, machine kind, date), figure, target, status] for each goal and
    the newest run holding its figure of each series, variant and machine kind."""
    rows = []
    for goal in goals:
        candidates = [r for r in records.get(goal.benchmark, []) if r["series"].startswith(goal.series)]
        if goal.command:
            candidates = [r for r in candidates if r["command"].replace(" --write", "") == goal.command]
        found = []
        for record in newest([r for r in candidates if evaluate(goal, r) is not None]):
            text, met = evaluate(goal, record)
            kind = machine_kind(record["machine"])
            run = f"`{goal.benchmark}`: {record['series']}{variant_words(record)}, {kind}, {record['when'][:10]}"
            found.append([goal.goal, run, text, target_words(goal), "**met**" if met else "not met"])
        missing = f"`{goal.benchmark}`: no record of {goal.series} holds this figure yet"
        missing += f"; measure it with `{goal.command} --write`" if goal.command else ""
        rows += found or [[goal.goal, missing, "–", target_words(goal), "no figure"]]
    return rows


def target_words(goal: Goal) -> str:
    """The target with its unit: "≥ +1.0 points", "≥ 1.3×", "≤ 60 min"."""
    if goal.measure == "margin":
        return f"≥ {goal.target:+.1f} points"
    if goal.measure in ("below", "above"):
        return f"{'<' if goal.measure == 'below' else '≥'} {goal.target:g} {goal.unit}"
    return f"≤ {goal.target:g} min" if goal.measure == "minutes" else f"≥ {goal.target:g}×"


def variant_words(record: Record) -> str:
    """ ", `--datasets drive`" for a run with options that change what it measures ("" without)."""
    return f", `{record['variant']}`" if record.get("variant") else ""
