"""The report of the `volume-accuracy` benchmark (volume_accuracy.py): its table, leader lines and notes."""

from __future__ import annotations

import os
import statistics
from typing import Any

import torch

from .machine import device_word
from .records import table
from .training import mean_spread

FOLDS, SEGATTN = 3, "segattn 3-D"


def leader_lines(means: dict[str, float], train_s: dict[str, float]) -> list[str]:
    """Who leads on mean Dice and by how much; segattn's best 3-D entry against the best MONAI one."""
    ranked = sorted(means, key=means.__getitem__, reverse=True)
    lines = []
    if len(ranked) > 1:
        first, second = ranked[:2]
        lead = 100 * (means[first] - means[second])
        lines.append(f"Leads on mean Dice: **{first}** ({100 * means[first]:.2f}), by {lead:.2f} points over "
                     f"{second} ({100 * means[second]:.2f}).")  # fmt: skip
    ours = [n for n in ranked if n.startswith(SEGATTN)]
    theirs = [n for n in ranked if n.startswith("MONAI")]
    if ours and theirs:
        a, b = ours[0], theirs[0]
        margin = 100 * (means[a] - means[b])
        met = margin >= 1 and train_s[a] <= train_s[b]
        lines.append(f"segattn's best 3-D entry, {a} ({100 * means[a]:.2f}, {train_s[a]:.0f} s), "
                     f"{'beats' if met else 'does not beat'} the best MONAI contender, {b} ({100 * means[b]:.2f}, "
                     f"{train_s[b]:.0f} s), by ≥ 1 point at ≤ its train seconds: {margin:+.2f} points.")  # fmt: skip
    return lines


def results_table(runs: list[Any], classes: list[str], budget: str, folds: list[int]) -> dict[str, Any]:
    """The table of `VolumeRun`s: one row per contender, mean ± std over the folds; budget in words."""
    rows, means, train_s = [], {}, {}
    for name in dict.fromkeys(r.name for r in runs):
        mine = [r for r in runs if r.name == name]
        means[name] = statistics.mean(r.dice for r in mine)
        train_s[name] = statistics.mean(r.train_s for r in mine)
        per_class = [mean_spread([r.classes[c] for r in mine]) for c in classes]
        steps = statistics.mean(r.steps for r in mine)
        rows.append([name, f"{mine[0].params:.2f}", mean_spread([r.dice for r in mine]), *per_class, f"{steps:.0f}",
                     f"{train_s[name]:.0f}", f"{statistics.mean(r.val_s for r in mine):.1f}"])  # fmt: skip
    columns = ["network", "params (M)", "mean Dice", *(f"{c} Dice" for c in classes), "steps", "train s", "val s"]
    caption = (
        f"**Hippocampus**, folds {folds} of {FOLDS}: {budget} per network and fold, mean ± std over the folds, in %"
    )
    return table(columns, rows, caption=caption, after="\n".join(leader_lines(means, train_s)))


def run_notes(minutes: float, length: str | None, lr: float, load_before: float, load_after: float) -> list[str]:
    """How the figures came about; length: the config's length in words, where it is the budget; lr:
    every network's learning rate."""
    budget = f"{60 * minutes:g} s"
    equal_time = (
        f"Equal wall time, not equal steps: every run trains until Trainer(max_time={budget}) stops it, its "
        "warm-up + cosine schedule following the clock over those seconds instead of a step count, so each "
        "network uses the whole budget however fast its steps are."
    )
    same_steps = f"Equal length: {length} (trainer.max_epochs passes over the train split) for every network."
    return [
        f"Same pipeline for every network: SegDataModule from configs/hippocampus.yaml's data ({FOLDS} seeded folds "
        "of the 200 volumes: val one fold, train the others), the same seed (same patches, augmentation, order), "
        f"CE + Dice loss, AdamW at lr {lr:g}, warm-up + cosine over each run's own steps; only the network (and a "
        "variant's data overrides) differs. No validation while training, no checkpoints, no logger.",
        f"{same_steps if length else equal_time} steps: done, mean over folds; train s: Trainer.fit's wall seconds "
        "(set-up included); val s: the scoring's.",
        "Scores (the Decathlon's convention): each val volume whole through `task.evaluation_logits` "
        "(inference_mode), argmax; per case and foreground class the Dice segattn.case_metrics gives (the case's "
        "own confusion matrix; its distances not computed); a class in neither truth nor prediction is NaN and "
        "left out, as case_metrics does. mean Dice: the mean over cases of each case's mean foreground Dice; class "
        "columns: the mean over the cases where the class is scored. Mean ± sample std over the folds, in %.",
        "MONAI AttentionUnet and UNet (num_res_units 2, instance norm): channels 16–128, strides 2, padded to a "
        "multiple of 8 (PadToStride); segattn 2.5-D: the 2-D attention_unet on 3-slice stacks along axis 0, "
        "scored slice by slice on whole volumes.",
        f"{device_word()}, {torch.get_num_threads()} CPU threads; 1-minute load average before / after: "
        f"{load_before:.2f} / {load_after:.2f} ({os.cpu_count()} cores). Fold by fold, every network in each: "
        "load drift spreads over the networks.",
    ]
