"""The README's pictures from a checkpoint: predictions as overlays and every gate's attention.

    python tools/figures.py --ckpt runs/demo/lightning_logs/version_0/checkpoints/best.ckpt \
        --images runs/synthetic/val --out docs/images

Writes overlays.png (image | truth-free overlay of the prediction, for the first --count images)
and attention.png (image | α of each gate, one row per image).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from segattn.data.io import read_image, write_image
from segattn.inference import Segmenter, expand_inputs
from segattn.viz import attention_grid, overlay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--images", required=True, help="image files, a folder or a glob")
    parser.add_argument("--out", default="docs/images")
    parser.add_argument("--count", type=int, default=4)
    args = parser.parse_args()
    segmenter = Segmenter.from_checkpoint(args.ckpt, device="cpu")
    overlays, rows = [], []
    for path in expand_inputs(args.images)[: args.count]:
        image = read_image(path)
        mask, maps = segmenter.attention(image)
        overlays.append(overlay(image, mask, segmenter.palette))
        rows.append(attention_grid(image, maps))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gap = np.full((overlays[0].shape[0], 4, 3), 255, np.uint8)
    write_image(out / "overlays.png", np.concatenate([p for o in overlays for p in (o, gap)][:-1], axis=1))
    write_image(out / "attention.png", np.concatenate(rows, axis=0))
    print(f"wrote {out / 'overlays.png'} and {out / 'attention.png'} (gates: {', '.join(maps)})")


if __name__ == "__main__":
    main()
