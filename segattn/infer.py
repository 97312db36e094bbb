"""`segattn infer`: label maps for a folder or glob of images, written as palette PNGs; for a
volume network (`spatial_dims: 3`), label volumes `<name>.nii.gz` for volume files, each in its
input's grid (`write_label_volume`: shape, affine, qform/sform codes), without overlays.

DataLoader workers read and transform images, the device computes, and a writer thread saves
results, so the three overlap. Every output is written atomically (`segattn.atomic`), so an
output that exists is complete: an image whose requested outputs all exist is skipped unless
`overwrite`. An output never lands on an input: a label map or overlay that segattn wrote in an
earlier run (it carries `OUTPUT_MARKER`) and lies among the inputs is recognised and not
segmented again, and any other clash between an output and an input or a foreign file is an
InputError before anything runs.

Every input segmented or failed is recorded in `<output>/manifest.jsonl` as the run goes
(`segattn.manifest`). A run may be one share of a job over several processes (`part`): the
inputs are planned in one order by every process and dealt round-robin, so each input has one
owner however fast the processes go (`segattn.infer_ranks` runs such a job).
"""

from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from segattn.atomic import atomic_write, remove_stale_temporaries, writable_folder
from segattn.data.io import is_own_output, read_image, write_label_map, write_overlay
from segattn.data.volume_io import VOLUME_SUFFIXES, read_grid, write_label_volume
from segattn.errors import InputError
from segattn.inference import Segmenter, expand_inputs
from segattn.inference.inputs import input_kind
from segattn.manifest import MANIFEST, Manifest, check_manifest, fold_parts, new_job_id
from segattn.viz import overlay

BAND_ROWS = 256  # rows of probabilities converted at a time when they are written
BAND_SLABS = 8  # a volume's slabs (D) converted at a time


@dataclass
class InferStats:
    """What a run did: counts, failures (input, one-line reason) and the time it took."""

    written: int = 0
    skipped: int = 0
    own_outputs: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0
    unit: str = "image"  # what was segmented: "image" or "volume"

    @property
    def images_per_second(self) -> float | None:
        """Images (volumes) written per second; None when nothing was written."""
        return self.written / self.seconds if self.written and self.seconds > 0 else None


def output_paths(image: Path, output: Path) -> dict[str, Path]:
    """An input's outputs by kind; a volume's label map is `<name>.nii.gz`, whatever its format,
    its name without the format's suffix (both of .nii.gz's), and it has no overlay (its path is
    named all the same, for an image network that refuses the volume)."""
    stem = image.stem
    if volume := input_kind(image) == "volume":
        stem = image.name[: -len(next(s for s in VOLUME_SUFFIXES if image.name.lower().endswith(s)))]
    return {
        "mask": output / (f"{stem}.nii.gz" if volume else f"{stem}.png"),
        "overlay": output / f"{stem}_overlay.jpg",
        "probs": output / f"{stem}_probs.npy",
    }


def plan_outputs(images: list[Path], output: Path, wanted: list[str]) -> tuple[list[Path], int]:
    """(the inputs to segment, how many inputs are segattn's own earlier outputs and are left
    out). Raises an InputError when an output would land on an input or on a file that segattn
    did not write, or when two inputs would write the same output."""
    resolved = {image: image.resolve() for image in images}
    input_files = set(resolved.values())
    outputs = {image: output_paths(image, output) for image in images}
    own = {  # label maps and overlays of other inputs, written by segattn
        path
        for image in images
        for kind in ("mask", "overlay")
        if (path := outputs[image][kind].resolve()) in input_files and path != resolved[image] and is_own_output(path)
    }
    inputs = [image for image in images if resolved[image] not in own]
    remaining = {resolved[image] for image in inputs}
    producer: dict[Path, Path] = {}  # resolved output → its input
    for image in inputs:
        for kind in wanted:
            path = outputs[image][kind]
            key = path.resolve()
            if key in producer:
                raise InputError(f"{producer[key]} and {image} would both write {path.name}; rename one")
            producer[key] = image
            if key in remaining:
                raise InputError(f"{image}: its {kind} would be written onto an input, {path}; choose another --output")
            if kind != "probs" and key.exists() and not is_own_output(key):
                raise InputError(
                    f"{path}: exists and was not written by segattn; the {kind} of {image} would replace it; "
                    "move it or choose another --output folder"
                )
    return inputs, len(images) - len(inputs)


def run_infer(
    segmenter: Segmenter,
    inputs: str | os.PathLike | list[str | os.PathLike],
    output: str | os.PathLike,
    batch_size: int = 8,
    overlay_images: bool = False,
    probs: bool = False,
    workers: int = 2,
    overwrite: bool = False,
    skip_errors: bool = False,
    part: tuple[int, int] = (0, 1),
    manifest: Manifest | None = None,
    **predict_options: Any,
) -> InferStats:
    """Writes `<stem>.png` label maps (palette PNG: pixel value = class index; 16-bit grey PNG
    beyond 256 classes) into `output`, and `<stem>_overlay.jpg` / `<stem>_probs.npy` (float16
    K×H×W) on request. skip_errors: an image that cannot be read or written is reported in
    `failed` and the run goes on; by default the first one raises. A volume network writes
    `<name>.nii.gz` label volumes (and `<name>_probs.npy`, float16 K×D×H×W); overlays are
    refused for it. part: (rank, world): this process segments inputs[rank::world] of the
    planned inputs, a job's share (its rank 0 has called `prepare_output` before the others
    began; `own_outputs` is counted by rank 0 only). manifest: where each input's record goes;
    None: `<output>/manifest.jsonl`."""
    output = Path(output)
    rank, world = part
    if world == 1:
        prepare_output(output)
    volumes = segmenter.volumes
    if volumes and overlay_images:
        raise InputError("overlays (--overlay) are drawn on images; a volume network writes label volumes only")
    wanted = ["mask", *(["overlay"] if overlay_images else []), *(["probs"] if probs else [])]
    images, own_outputs = plan_outputs([Path(p) for p in expand_inputs(inputs)], output, wanted)
    mine = images[rank::world]
    todo = [p for p in mine if overwrite or not all(output_paths(p, output)[k].exists() for k in wanted)]
    stats = InferStats(skipped=len(mine) - len(todo), own_outputs=own_outputs if rank == 0 else 0,
                       unit="volume" if volumes else "image")  # fmt: skip
    record = manifest or Manifest(output / MANIFEST, new_job_id())
    try:
        options = {"batch_size": batch_size, "return_probs": probs, "workers": workers, **predict_options}
        segment(segmenter, todo, output, wanted, stats, record, skip_errors, options, progress=rank == 0)
    finally:
        if manifest is None:
            record.close()
    return stats


def prepare_output(output: Path) -> None:
    """Creates the output folder (an InputError when it cannot be written to, or when its
    manifest.jsonl is not segattn's), removes the temporary files of a run that was killed
    mid-write and folds a killed job's manifest parts: before any process of a job writes there."""
    if output.exists() and not output.is_dir():
        raise InputError(f"output {output}: exists and is not a folder; expected a folder for the label maps")
    writable_folder(output, f"output {output}")
    check_manifest(output)
    remove_stale_temporaries(output)
    fold_parts(output)


def segment(
    segmenter: Segmenter,
    todo: list[Path],
    output: Path,
    wanted: list[str],
    stats: InferStats,
    manifest: Manifest,
    skip_errors: bool,
    options: dict[str, Any],
    progress: bool = True,
) -> None:
    """Segments `todo` and writes their outputs, counting them in `stats`; the writer thread
    records each input in `manifest` as soon as its outputs are written. A failure raises unless
    skip_errors. options: for `predict_iter`; progress: a progress bar (a job's rank 0 only). At
    most 2 × batch_size results wait for the writer (the network waits beyond that)."""
    start = last = time.perf_counter()
    pending: deque[tuple[Path, Future]] = deque()
    with ThreadPoolExecutor(max_workers=1) as writer:
        results = segmenter.predict_iter(todo, skip_errors=skip_errors, **options)
        items = zip(todo, results, strict=True)
        for path, result in tqdm(items, total=len(todo), unit=stats.unit[:3], desc="infer") if progress else items:
            now = time.perf_counter()
            seconds, last = now - last, now
            if isinstance(result, InputError):
                stats.failed.append((path, str(result)))
                manifest.add(path, "failed", error=str(result))
                tqdm.write(f"segattn: skipped {path}: {result}")
                continue
            job = (path, output, result, segmenter, wanted, manifest, seconds)
            pending.append((path, writer.submit(write_and_record, *job)))
            while pending and (pending[0][1].done() or len(pending) > 2 * options["batch_size"]):
                count_written(*pending.popleft(), stats, skip_errors)
        while pending:
            count_written(*pending.popleft(), stats, skip_errors)
    stats.seconds = time.perf_counter() - start


def count_written(path: Path, future: Future, stats: InferStats, skip_errors: bool) -> None:
    """Waits for one input's outputs and counts them: written, or failed (raised unless skip_errors)."""
    try:
        future.result()  # re-raises a failed write
    except InputError as exc:
        if not skip_errors:
            raise
        stats.failed.append((path, str(exc)))
        return
    stats.written += 1


def write_and_record(
    image: Path, output: Path, result: np.ndarray, segmenter: Segmenter, wanted: list[str], manifest: Manifest,
    seconds: float,
) -> None:  # fmt: skip
    """`write_outputs`, then the input's record: done (with its H×W or D×H×W), or failed (re-raised)."""
    try:
        write_outputs(image, output, result, segmenter, wanted)
    except InputError as exc:
        manifest.add(image, "failed", error=str(exc))
        raise
    shape = result.shape[-3 if input_kind(image) == "volume" else -2 :]
    manifest.add(image, "done", output_paths(image, output)["mask"], shape, seconds)


def write_outputs(image: Path, output: Path, result: np.ndarray, segmenter: Segmenter, wanted: list[str]) -> None:
    """Writes the wanted outputs of one image (volume), the label map last: each atomically, so a
    run killed midway leaves no partial file, only a missing one that the next run writes."""
    paths = output_paths(image, output)
    labels = result if "probs" not in wanted else write_probabilities(paths["probs"], result, segmenter.label_dtype)
    if input_kind(image) == "volume":  # written in its own grid
        write_label_volume(labels, read_grid(image), paths["mask"])
        return
    if "overlay" in wanted:
        write_overlay(paths["overlay"], overlay(read_image(image, segmenter.in_channels), labels, segmenter.palette))
    write_label_map(paths["mask"], labels, segmenter.palette)


def write_probabilities(path: Path, probs: np.ndarray, label_dtype: np.dtype) -> np.ndarray:
    """Saves float32 K×H×W (K×D×H×W) probabilities as a float16 .npy (atomically) and returns
    their label map (argmax of the float32 values, as `label_dtype`), both band by band (rows;
    a volume's slabs), so that no second full-size array is held besides the file's pages."""
    labels = np.empty(probs.shape[1:], label_dtype)
    rows = BAND_ROWS if probs.ndim == 3 else BAND_SLABS
    with atomic_write(path) as temporary:
        stored = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float16, shape=probs.shape)
        for top in range(0, probs.shape[1], rows):
            band = probs[:, top : top + rows]
            stored[:, top : top + rows] = band
            labels[top : top + rows] = band.argmax(axis=0)
        stored.flush()
        del stored  # closes the mapping before the file is renamed
    return labels
