"""Test-only Lightning callbacks, passed to `segattn fit` with --trainer.callbacks."""

import json
import os
import signal
from pathlib import Path

from lightning.pytorch.callbacks import Callback


class SampleLog(Callback):
    """Appends one JSON line per training batch, {"epoch", "batch", "names"}, to
    <folder>/rank<R>.jsonl. With kill_epoch/kill_batch, the process SIGKILLs itself before that
    batch: a crash mid-epoch, with no chance to clean up."""

    def __init__(self, folder: str, kill_epoch: int = -1, kill_batch: int = -1) -> None:
        self.folder = Path(folder)
        self.kill_at = (kill_epoch, kill_batch)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        self.folder.mkdir(parents=True, exist_ok=True)
        line = {"epoch": trainer.current_epoch, "batch": batch_idx, "names": list(batch["name"])}
        with open(self.folder / f"rank{trainer.global_rank}.jsonl", "a") as handle:
            handle.write(json.dumps(line) + "\n")
