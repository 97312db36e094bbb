"""`segattn infer` as a job: the manifest it writes as it goes, a re-run that retries what failed,
and one job over two processes (Lightning Fabric, gloo on the CPU) that writes the files of one
process, file for file, and survives one of its processes being killed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from segattn.data.io import write_image
from segattn.manifest import MANIFEST, read_manifest

from .test_no_data_loss import SEGATTN, check_whole_outputs, ckpt, one_line_error, picture  # noqa: F401

pytestmark = pytest.mark.slow


def images_in(folder: Path, count: int, size: tuple[int, int] = (40, 56)) -> list[Path]:
    folder.mkdir()
    paths = [folder / f"{i:03d}.png" for i in range(count)]
    for i, path in enumerate(paths):
        write_image(path, picture(*size, seed=i))
    return paths


def latest(records: list[dict]) -> dict[str, dict]:
    """Each input's newest record."""
    return {record["input"]: record for record in records}


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


def job(ckpt_path: str, images: Path, out: Path, *extra: str) -> list[str]:
    return [*SEGATTN, "infer", "--ckpt", ckpt_path, "--input", str(images), "--output", str(out),
            "--workers", "0", "--device", "cpu", *extra]  # fmt: skip


def test_the_manifest_records_each_input_as_it_goes_and_a_rerun_retries_the_failed(ckpt, tmp_path, segattn):  # noqa: F811
    images, out = tmp_path / "in", tmp_path / "out"
    paths = images_in(images, 4)
    (images / "004.png").write_text("not a picture")  # text renamed .png
    args = ["infer", "--ckpt", ckpt, "--input", images, "--output", out, "--workers", "0", "--skip-errors"]
    first = segattn(*args)
    assert first.returncode == 1 and "1 image(s) failed" in first.stderr
    records = read_manifest(out / MANIFEST)
    assert len(records) == 5 and len({r["job"] for r in records}) == 1
    state = latest(records)
    for path in paths:
        record = state[str(path)]
        assert record["status"] == "done" and record["error"] is None and record["shape"] == [40, 56]
        assert Path(record["output"]) == out / path.with_suffix(".png").name and record["seconds"] >= 0
    failed = state[str(images / "004.png")]
    assert failed["status"] == "failed" and failed["output"] is None and "004.png" in failed["error"]

    write_image(images / "004.png", picture(40, 56, seed=4))  # repaired: the re-run does that one only
    second = segattn(*args)
    assert second.returncode == 0 and "wrote 1 label maps" in second.stdout and "4 existed" in second.stdout
    records = read_manifest(out / MANIFEST)
    assert len(records) == 6 and records[-1]["input"] == str(images / "004.png") and records[-1]["status"] == "done"
    assert records[-1]["job"] != records[0]["job"]


def test_two_processes_write_the_files_of_one_file_for_file(ckpt, tmp_path, segattn):  # noqa: F811
    images = tmp_path / "in"
    images_in(images, 7)
    single = segattn("infer", "--ckpt", ckpt, "--input", images, "--output", tmp_path / "one", "--workers", "0")
    assert single.returncode == 0, single.stderr[-2000:]
    two = subprocess.run(job(ckpt, images, tmp_path / "two", "--devices", "2"), capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-3000:]
    assert f"wrote 7 label maps to {tmp_path / 'two'}" in two.stdout and two.stdout.count("wrote") == 1
    assert outputs(tmp_path / "two") == outputs(tmp_path / "one") and len(outputs(tmp_path / "one")) == 7
    records = read_manifest(tmp_path / "two" / MANIFEST)
    assert sorted(r["input"] for r in records) == sorted(str(p) for p in images.glob("*.png"))
    ranks = {Path(r["input"]).name: r["rank"] for r in records}
    assert ranks == {f"{i:03d}.png": i % 2 for i in range(7)}  # dealt round-robin in name order
    assert not list((tmp_path / "two").glob(".*")), "the parts are folded into manifest.jsonl"


def test_a_job_with_a_killed_process_leaves_whole_files_and_the_rerun_completes_it(ckpt, tmp_path, segattn):  # noqa: F811
    images, out = tmp_path / "in", tmp_path / "out"
    images_in(images, 24, size=(256, 320))
    process = subprocess.Popen(job(ckpt, images, out, "--devices", "2", "--probs"), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None and len(list(out.glob("*_probs.npy"))) < 4:
        time.sleep(0.05)
    (rank1,) = psutil.Process(process.pid).children()  # the launcher's other process
    rank1.send_signal(signal.SIGKILL)
    process.wait(timeout=60)  # Fabric's observer takes the job down with it
    assert process.returncode != 0
    written = check_whole_outputs(out, (256, 320))
    assert 0 < written < 24, "the kill should land mid-job"
    killed = [record for part in out.glob(".manifest-*") for record in read_manifest(part)]
    assert killed and all(Path(r["output"]).is_file() for r in killed if r["status"] == "done")

    rerun = segattn(*job(ckpt, images, out, "--probs")[len(SEGATTN) :])  # one process completes the job
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"{written} existed and were skipped" in rerun.stdout
    assert len(list(out.glob("[0-9][0-9][0-9].png"))) == 24 and len(list(out.glob("*_probs.npy"))) == 24
    assert not list(out.glob(".*")), "temporaries and manifest parts: removed and folded"
    state = latest(read_manifest(out / MANIFEST))
    assert len(state) == 24 and all(r["status"] == "done" for r in state.values())


def test_a_single_device_with_several_processes_is_one_line(ckpt, tmp_path, segattn):  # noqa: F811
    images_in(tmp_path / "in", 1)
    args = ["infer", "--ckpt", ckpt, "--input", tmp_path / "in", "--output", tmp_path / "out", "--devices", "2"]
    line = one_line_error(segattn(*args, "--device", "cuda:1"))
    assert line == (
        "segattn: error: --device cuda:1: names one device, and --devices 2 runs a process per device; "
        "expected --device auto, cpu or cuda (each process takes its own GPU)"
    )


def test_a_manifest_jsonl_segattn_did_not_write_is_never_appended_to(ckpt, tmp_path, segattn):  # noqa: F811
    images_in(tmp_path / "in", 2)
    (tmp_path / "out").mkdir()
    foreign = tmp_path / "out" / MANIFEST
    foreign.write_text('{"sample": 1, "label": "cat"}\n')
    args = ["infer", "--ckpt", ckpt, "--input", tmp_path / "in", "--output", tmp_path / "out", "--workers", "0"]
    assert one_line_error(segattn(*args)) == (
        f"segattn: error: {foreign}: exists and was not written by segattn; infer records its jobs there; "
        "move it or choose another --output folder"
    )
    assert foreign.read_text() == '{"sample": 1, "label": "cat"}\n' and not list((tmp_path / "out").glob("*.png"))


CRASH = """
import sys
import segattn.infer_ranks as job
real = job.run_infer
def run(segmenter, inputs, output, part, **options):
    if part[0] == int(sys.argv[4]):
        raise RuntimeError("a bug on this rank")
    return real(segmenter, inputs, output, part=part, **options)
job.run_infer = run
job.run_infer_job(sys.argv[1], sys.argv[2], sys.argv[3], devices=2, device="cpu", workers=0)
"""


@pytest.mark.parametrize("rank", [0, 1])
def test_a_crash_that_is_not_the_users_ends_the_job_and_names_its_process(ckpt, tmp_path, rank):  # noqa: F811
    """A bug or out-of-memory in one process (not an InputError) must not leave the other waiting
    for it: the job ends, rank 0 raises it, and the other process's share is written."""
    images, out, script = tmp_path / "in", tmp_path / "out", tmp_path / "crash.py"
    images_in(images, 4)
    script.write_text(CRASH)
    command = [sys.executable, str(script), ckpt, str(images), str(out), str(rank)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert done.returncode != 0 and "RuntimeError: a bug on this rank" in done.stderr
    if rank == 1:
        assert "process 1 of 2 failed: RuntimeError: a bug on this rank" in done.stderr
    assert len(list(out.glob("*.png"))) == 2
