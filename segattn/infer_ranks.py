"""`segattn infer --devices N [--num-nodes M]`: one inference job over N × M processes, one per
device, launched by Lightning Fabric as training is: it starts a node's processes itself (the
same command line with LOCAL_RANK set), or finds them started by torchrun or SLURM.

Every process plans the same inputs in the same order and segments its round-robin share
(`run_infer`'s part), so an input has one owner whatever the speed of the processes, and the
files are those of one process, file for file. Rank 0 prepares the output folder before the
others start (stale temporaries removed, a killed job's manifest parts folded), each process
records into its own manifest part, and at the end rank 0 folds the parts into manifest.jsonl
and reports the job. A process that fails on an input (without skip_errors) stops its share;
the others finish theirs, and rank 0 raises its error then, so no process waits on a dead one;
a crash that is not the user's (a bug, out of memory) reaches the gather too, its traceback
printed by its own process.
"""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
from lightning.fabric import Fabric

from segattn.errors import InputError
from segattn.infer import InferStats, prepare_output, run_infer
from segattn.inference import Segmenter
from segattn.manifest import Manifest, fold_parts, new_job_id, part_path

ACCELERATORS = {"auto": "auto", "cpu": "cpu", "cuda": "cuda", "gpu": "cuda"}


def accelerator_of(device: str, devices: int) -> str:
    """Fabric's accelerator for `--device` in a job of several processes, where each process
    takes its own device: "auto", "cpu" or "cuda"; a single device ("cuda:1") is an InputError."""
    if device not in ACCELERATORS:
        raise InputError(
            f"--device {device}: names one device, and --devices {devices} runs a process per device; "
            "expected --device auto, cpu or cuda (each process takes its own GPU)"
        )
    return ACCELERATORS[device]


def run_infer_job(
    ckpt: str | os.PathLike,
    inputs: str | os.PathLike | list[str | os.PathLike],
    output: str | os.PathLike,
    devices: int,
    num_nodes: int = 1,
    device: str = "auto",
    load_options: dict[str, Any] | None = None,
    **infer_options: Any,
) -> InferStats | None:
    """Runs `run_infer` as one job over devices × num_nodes processes. load_options: for
    `Segmenter.from_checkpoint` (precision, compile, trust_checkpoint); infer_options: for
    `run_infer`. Returns the job's stats on rank 0 (counts summed, failures of every process,
    seconds: the job's wall time) and None on the others; raises on rank 0 the first error that
    stopped a process."""
    fabric = Fabric(accelerator=accelerator_of(device, devices), devices=devices, num_nodes=num_nodes, strategy="ddp")
    fabric.launch()
    start, rank, world = time.perf_counter(), fabric.global_rank, fabric.world_size
    if fabric.device.type == "cpu":  # the node's cores shared among its processes, not each taking all
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // devices))
    output = Path(output)
    job, crash = new_job_id(), None
    if rank == 0:
        try:
            prepare_output(output)
        except Exception as exc:  # every failure must reach the broadcast, or the others wait on it
            crash = exc
    job, setup = fabric.broadcast((job, None if crash is None else Failure.of(crash, 0)))
    if crash is not None:
        raise crash
    if setup is not None:
        raise setup.error(world)
    stats: InferStats | Failure
    try:
        segmenter = Segmenter.from_checkpoint(ckpt, fabric.device, **(load_options or {}))
        with Manifest(part_path(output, job, rank), job, rank) as manifest:
            stats = run_infer(segmenter, inputs, output, part=(rank, world), manifest=manifest, **infer_options)
    except Exception as exc:  # a bug or out-of-memory too must reach the gather, or the others wait on it
        crash, stats = exc, Failure.of(exc, rank)
        if rank != 0 and not isinstance(exc, InputError):
            traceback.print_exc()  # rank 0 re-raises its own below, traceback and all
    gathered: list[InferStats | Failure] = [stats] * world
    if world > 1:
        dist.all_gather_object(gathered, stats)
        dist.destroy_process_group()  # else gloo's threads abort the interpreter at its exit
    if rank != 0:
        return None
    fold_parts(output, job)
    if crash is not None:
        raise crash
    failures = [s for s in gathered if isinstance(s, Failure)]
    if failures:
        raise failures[0].error(world)
    return merged(gathered, time.perf_counter() - start)


class Failure(NamedTuple):
    """What stopped one process: its rank, the message, and whether it is the user's (an InputError)."""

    rank: int
    message: str
    user: bool

    @classmethod
    def of(cls, exc: Exception, rank: int) -> Failure:
        user = isinstance(exc, InputError)
        return cls(rank, str(exc) if user else f"{type(exc).__name__}: {exc}", user)

    def error(self, world: int) -> Exception:
        """The exception that reports it on another process: the user's one line, or which process crashed."""
        if self.user:
            return InputError(self.message)
        return RuntimeError(f"segattn infer: process {self.rank} of {world} failed: {self.message}")


def merged(parts: list[Any], seconds: float) -> InferStats:
    """One InferStats of every process's: counts summed, failures in input order."""
    total = InferStats(unit=parts[0].unit, seconds=seconds)
    for part in parts:
        total.written += part.written
        total.skipped += part.skipped
        total.own_outputs += part.own_outputs
        total.failed += part.failed
    total.failed.sort(key=lambda failure: str(failure[0]))
    return total
