"""segattn's benchmarks as a package: one module per benchmark over one shared harness.

Each benchmark's `run(args)` measures and returns a record (records.py: one JSON object per run,
with the command, the machine, the settings and the figures as rows); `tools/benchmark.py` prints
it, and with --write appends it to docs/results/<benchmark>.jsonl and re-renders docs/benchmarks.md
(render.py) from those files alone.

harness.py      timing (interleaved medians, synchronisation, autocast), peak memory, FLOPs
machine.py      CPU model, cores, GPU, torch version, load average
contenders.py   the one list of networks every benchmark compares (segattn, smp, MONAI)
training.py     training runner: Plan, Run, fit_and_score, run_jobs (also tools/tune.py's)
records.py      the record format, reading and appending JSON Lines
render.py       docs/benchmarks.md from docs/results/*.jsonl; goals.py the goals as data
speed.py inference.py gpu_inference.py metrics.py data.py accuracy.py memory.py volumes.py
volume_accuracy.py (volume_report.py: its table) serving.py: the benchmarks
tuning.py tune_summary.py: tools/tune.py's variants, folds and summary table
cli.py          argparse checks both command lines share
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "docs" / "results"
DOC = REPO / "docs" / "benchmarks.md"
