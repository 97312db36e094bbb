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
import torch

from segattn.data.io import write_image
from segattn.inference import InputImages, Segmenter, expand_inputs
from segattn.viz import attention_grid, overlay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--images", required=True, help="image files, a folder or a glob")
    parser.add_argument("--out", default="docs/images")
    parser.add_argument("--count", type=int, default=4)
    args = parser.parse_args()
    segmenter = Segmenter.from_checkpoint(args.ckpt, device="cpu")
    items = expand_inputs(args.images)[: args.count]
    inputs = InputImages(items, segmenter.in_channels, segmenter.transform)
    overlays, rows = [], []
    for index in range(len(items)):
        image = np.asarray(inputs.load(index))
        with torch.inference_mode():  # one forward: the eval transform keeps the size, so argmax is the label map
            logits, maps = segmenter.model(inputs[index]["tensor"][None], return_attention=True)
        overlays.append(overlay(image, logits[0].argmax(0).numpy(), segmenter.palette))
        rows.append(attention_grid(image, {name: a[0, 0].numpy() for name, a in maps.items()}))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gap = np.full((overlays[0].shape[0], 4, 3), 255, np.uint8)
    write_image(out / "overlays.png", np.concatenate([p for o in overlays for p in (o, gap)][:-1], axis=1))
    write_image(out / "attention.png", np.concatenate(rows, axis=0))
    print(f"wrote {out / 'overlays.png'} and {out / 'attention.png'} (gates: {', '.join(maps)})")


if __name__ == "__main__":
    main()
