"""Splitting a data set's samples: explicit lists, a seeded ratio, or fold k of n.

A split spec is a dict, e.g.
    {"files": ["21", "22"]}                            the listed sample keys, in that order
    {"ratio": 0.8, "subset": "train", "seed": 0}       a seeded shuffle; train = first 80 %
    {"fold": 2, "folds": 5, "subset": "val", "seed": 0}  fold 2 of 5 is val, the rest train
The same spec with subset "train" and "val" always gives disjoint parts that cover every sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from segattn.errors import InputError

SplitSpec = dict[str, Any]
SUBSETS = ("train", "val")


def select(keys: Sequence[str], spec: SplitSpec | None, source: str) -> list[str]:
    """The sample keys of `keys` (sorted) that `spec` selects; all of them when spec is None."""
    keys = sorted(keys)
    if spec is None:
        return keys
    kinds = [k for k in ("files", "ratio", "fold") if k in spec]
    if len(kinds) != 1:
        raise InputError(f"{source}: split needs exactly one of 'files', 'ratio' or 'fold', got {sorted(spec)}")
    kind = kinds[0]
    allowed = {"files": {"files"}, "ratio": {"ratio", "subset", "seed"}, "fold": {"fold", "folds", "subset", "seed"}}
    unknown = set(spec) - allowed[kind]
    if unknown:
        raise InputError(
            f"{source}: unknown split key(s) {sorted(unknown)}; a {kind} split takes {sorted(allowed[kind])}"
        )
    if kind == "files":
        return select_files(keys, [str(f) for f in spec["files"]], source)
    subset = spec.get("subset")
    if subset not in SUBSETS:
        raise InputError(f"{source}: split subset must be 'train' or 'val', got {subset!r}")
    order = [keys[i] for i in np.random.default_rng(int(spec.get("seed", 0))).permutation(len(keys))]
    if kind == "ratio":
        ratio = float(spec["ratio"])
        if not 0 < ratio < 1:
            raise InputError(f"{source}: split ratio must lie strictly between 0 and 1, got {ratio}")
        cut = min(max(round(ratio * len(order)), 1), len(order) - 1)
        chosen = order[:cut] if subset == "train" else order[cut:]
    else:
        fold, folds = int(spec["fold"]), int(spec.get("folds", 5))
        if folds < 2 or not 0 <= fold < folds:
            raise InputError(f"{source}: expected 0 ≤ fold < folds and folds ≥ 2, got fold {fold} of {folds}")
        in_fold = set(np.array_split(np.array(order, dtype=object), folds)[fold].tolist())
        chosen = [k for k in order if (k in in_fold) == (subset == "val")]
    return sorted(chosen)


def select_files(keys: list[str], wanted: list[str], source: str) -> list[str]:
    present = set(keys)
    missing = [w for w in wanted if w not in present]
    if missing:
        raise InputError(f"{source}: split lists {missing[:5]} which are not samples here (e.g. {keys[:3]})")
    if len(set(wanted)) != len(wanted):
        raise InputError(f"{source}: split lists a sample twice")
    return list(wanted)
