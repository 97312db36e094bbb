"""tools/tune.py summarize: a search's JSONL runs (docs/tune/*.jsonl) as a Markdown table: mean ±
std over folds × seeds of each headline score, the paired difference of each variant to the baseline,
and who leads."""

from __future__ import annotations

import json
import statistics
from typing import Any

from .training import mean_spread
from .tuning import fail


def paired(mine: list[dict], base: list[dict], key: str) -> list[float]:
    """Score differences mine − base over the (fold, seed) runs both have."""
    by_run = {(r["fold"], r["seed"]): r["scores"][key] for r in base}
    return [r["scores"][key] - by_run[r["fold"], r["seed"]] for r in mine if (r["fold"], r["seed"]) in by_run]


def setup_text(setup: dict[str, Any]) -> str:
    """The search's setup in words: data set, folds, budget, crops, batch."""
    budget = f"{setup['steps']} steps" if setup["steps"] else f"{setup['epochs']} epochs of each fold's train part"
    n, batch = setup["val_images"], setup["batch"]
    val = "" if n is None else f", only the first {-(-n // batch) * batch} held-out images scored (whole batches)"
    return (
        f"**{setup['dataset']}**, {setup['folds']} folds of the train split (fold seed {setup['fold_seed']}): "
        f"{budget}, {setup['crop']}×{setup['crop']} crops, batch {batch}{val}"
    )


def summary(records: list[dict[str, Any]], baseline: str | None = None) -> str:
    """Markdown table (best first), the leader's margin and notes of a search's runs; Δ against
    `baseline` (default: of the variants with runs, the one first in the variants file)."""
    setups = {json.dumps(r["setup"], sort_keys=True) for r in records}
    if len(setups) != 1:
        raise fail(f"the files hold runs of {len(setups)} different setups: {sorted(setups)}")
    keys = list(records[0]["scores"])
    names = sorted({r["variant"]: r["index"] for r in records}.items(), key=lambda item: item[1])
    runs = {name: [r for r in records if r["variant"] == name] for name, _ in names}
    if baseline is not None and baseline not in runs:
        raise fail(f"--baseline: no runs of {baseline!r}; the files hold {[name for name, _ in names]}")
    if baseline is not None:
        where = "given by --baseline"
    else:
        baseline, index = names[0]
        where = "the first of the variants file with runs here" if index else "the first entry of the variants file"
    means = {name: statistics.mean(r["scores"][keys[0]] for r in mine) for name, mine in runs.items()}
    ranked = sorted(runs, key=means.__getitem__, reverse=True)
    lines = [
        setup_text(records[0]["setup"]),
        "",
        f"| variant | runs | params (M) | {' | '.join(keys)} | {' | '.join(f'Δ {key}' for key in keys)} | train s |",
        "|---|---:|---:|" + "---:|" * 2 * len(keys) + "---:|",
    ]
    for name in ranked:
        mine = runs[name]
        cells = [mean_spread([r["scores"][key] for r in mine]) for key in keys]
        cells += ["–" if name == baseline else mean_spread(paired(mine, runs[baseline], key)) for key in keys]
        seconds = statistics.mean(r["seconds"] for r in mine)
        lines.append(f"| {name} | {len(mine)} | {mine[0]['params']:.2f} | {' | '.join(cells)} | {seconds:.0f} |")
    own = {name: mine[0]["epochs"] for name, mine in runs.items() if mine[0].get("epochs")}  # older runs: no key
    if own:
        lengths = ", ".join(f"{name}: {epochs} epochs" for name, epochs in own.items())
        lines += ["", f"Trained for their own length (the variants file's `epochs`), not the budget above: {lengths}."]
    most = max(len(mine) for mine in runs.values())
    complete = [name for name in ranked if len(runs[name]) == most]  # a partial search is not ranked for the lead
    if len(complete) < len(ranked):
        lines += [
            "",
            f"Not ranked for the lead (fewer than {most} runs): {', '.join(sorted(set(ranked) - set(complete)))}.",
        ]
    if len(complete) > 1:
        first, second = complete[:2]
        margin = paired(runs[first], runs[second], keys[0])
        lines += [
            "",
            f"Leads on {keys[0]}: **{first}** ({100 * means[first]:.2f}), {100 * (means[first] - means[second]):.2f} "
            f"points over {second} ({100 * means[second]:.2f}); paired over {len(margin)} fold × seed runs: "
            f"{mean_spread(margin)}.",
        ]
    lines += [
        "",
        "Scores: mean ± sample std over folds × seeds, in %, each run scored on its held-out fold of the train split "
        "(the config's val split untouched). Δ: paired difference to the baseline "
        f"({baseline}, {where}) over the (fold, seed) runs both have, mean ± std, in "
        "points; folds differ more than variants, so judge a variant by Δ and its spread. train s: mean wall seconds "
        "of Trainer.fit.",
    ]
    return "\n".join(lines)
