"""`segattn demo`: synthetic data → fit → evaluate → predicted masks and overlays → summary."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from segattn.commands.lightning import SegattnCLI
from segattn.errors import MissingPathError, check_count
from segattn.evaluate import evaluate_dataset, print_scores, write_report
from segattn.infer import run_infer
from segattn.inference import Segmenter

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
SHOWN_IMAGES = 4


def run_demo(
    config: str | None = None,
    out: str = "runs/demo",
    data_dir: str | None = None,
    epochs: int | None = None,
    n_train: int | None = None,
    n_val: int | None = None,
) -> dict:
    """Runs the demo and returns the validation scores of the best checkpoint."""
    for key, value in (("epochs", epochs), ("n_train", n_train), ("n_val", n_val)):
        if value is not None:
            check_count(key, value)
    start = time.perf_counter()
    config_path = Path(config) if config else DEFAULT_CONFIG
    if not config_path.is_file():
        raise MissingPathError(f"{config_path}: demo config not found; pass --config configs/demo.yaml")
    args = ["fit", "--config", str(config_path), "--trainer.default_root_dir", out]
    if epochs is not None:
        args += ["--trainer.max_epochs", str(epochs)]
    for split in ("train", "val"):
        prefix = f"--data.{split}.init_args."
        if data_dir is not None:
            args += [prefix + "root", data_dir]
        if n_train is not None:
            args += [prefix + "n_train", str(n_train)]
        if n_val is not None:
            args += [prefix + "n_val", str(n_val)]
    cli = SegattnCLI(args=args)
    best = Path(cli.trainer.checkpoint_callback.best_model_path)
    fit_seconds = time.perf_counter() - start

    segmenter = Segmenter.from_checkpoint(best)
    val = cli.datamodule.datasets["val"]
    evaluation = evaluate_dataset(segmenter, val)
    scores = evaluation.scores
    report = write_report(evaluation, Path(out) / "eval", segmenter, val, worst=4)

    predictions = Path(out) / "predictions"  # what `segattn infer --overlay` writes, for a few val images
    shown = val.image_paths[:SHOWN_IMAGES]
    run_infer(segmenter, shown, predictions, overlay_images=True, workers=0, overwrite=True)

    console = Console()
    print_scores(scores, f"val, best checkpoint, {len(val)} images", console)
    console.print(f"[bold]val mIoU {100 * scores['mIoU']:.2f}[/bold]")
    console.print(f"checkpoint   {best}")
    console.print(f"training log {cli.trainer.log_dir}/")
    console.print(f"evaluation   {report['metrics'].parent}/ (metrics.json, per_class.csv, confusion.png, worst/)")
    console.print(f"predictions  {predictions}/ (label-map PNGs and overlays of {len(shown)} val images)")
    console.print(f"time         {fit_seconds:.0f} s fit, {time.perf_counter() - start:.0f} s in all")
    return scores
