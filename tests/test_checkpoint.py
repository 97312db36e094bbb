"""Checkpoint loading is safe: no code runs on load unless the user trusts the file."""

import os
import re

import numpy as np
import pytest
import torch
from torch import nn

from segattn import AttentionUNet, InputError, MissingPathError, Segmenter
from segattn.checkpoint import MODEL_PREFIX, RECORD_KEY, check_output, load, make_record, read
from segattn.data.io import write_image
from segattn.data.transforms import eval_pipeline, serialize

from .conftest import REPO


class MakesADirectoryWhenUnpickled:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (str(self.path),))


def record():
    return make_record("attention_unet", {"widths": [8, 16]}, 3, ["bg", "fg"], [[0, 0, 0], [255, 0, 0]],
                       serialize(eval_pipeline("imagenet", 3)))  # fmt: skip


def write_malicious(path, marker):
    """A segattn checkpoint that makes the folder `marker` when unpickled."""
    torch.save({RECORD_KEY: record(), "state_dict": {}, "payload": MakesADirectoryWhenUnpickled(marker)}, path)
    return path


def test_a_checkpoint_crafted_to_run_code_is_refused_and_the_code_does_not_run(tmp_path):
    marker = tmp_path / "code-ran"
    write_malicious(tmp_path / "x.ckpt", marker)
    with pytest.raises(InputError, match="--trust-checkpoint"):
        load(tmp_path / "x.ckpt")
    with pytest.raises(InputError, match="--trust-checkpoint"):
        Segmenter.from_checkpoint(tmp_path / "x.ckpt")
    with pytest.raises(InputError, match=r"could run code \(.*\)\.$") as refused:  # a caller with no such flag
        read(tmp_path / "x.ckpt", trust_hint=None)
    assert "trust" not in str(refused.value)
    assert not marker.exists()
    load(tmp_path / "x.ckpt", trust=True)  # the user's explicit choice: the payload runs
    assert marker.exists()


def test_foreign_and_missing_files_are_named(tmp_path):
    with pytest.raises(MissingPathError, match=r"none\.ckpt"):
        load(tmp_path / "none.ckpt")
    (tmp_path / "text.ckpt").write_text("not a checkpoint")
    with pytest.raises(InputError, match=r"text\.ckpt"):
        load(tmp_path / "text.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "plain.ckpt")
    with pytest.raises(InputError, match="no 'segattn' record"):
        load(tmp_path / "plain.ckpt")
    torch.save({RECORD_KEY: record() | {"format_version": 99}, "state_dict": {}}, tmp_path / "future.ckpt")
    with pytest.raises(InputError, match="format 99"):
        load(tmp_path / "future.ckpt")


def test_weights_of_another_architecture_are_named(tmp_path):
    torch.save(
        {RECORD_KEY: record(), "state_dict": {"model.head.weight": torch.zeros(2, 8, 1, 1)}}, tmp_path / "a.ckpt"
    )
    with pytest.raises(InputError, match="missing"):
        Segmenter.from_checkpoint(tmp_path / "a.ckpt", device="cpu")


def write_checkpoint(path, damage=lambda state: None):
    """A small checkpoint of `record()`'s network, its weights changed by `damage(state)` first."""
    torch.manual_seed(0)
    state = AttentionUNet(num_classes=2, widths=(8, 16)).state_dict()
    damage(state)
    torch.save({RECORD_KEY: record(), "state_dict": {MODEL_PREFIX + k: v for k, v in state.items()}}, path)
    return path


def nan_twice(state):
    state["encoder.stages.0.3.weight"][0, 0, 0, 0] = float("nan")
    state["head.weight"][:] = float("nan")  # later in the state: the first bad tensor is named


def overflow(state):  # finite weights whose product overflows float32
    state["encoder.stages.0.0.weight"] *= 1e30
    state["encoder.stages.0.3.weight"] *= 1e30


@pytest.mark.parametrize(
    "damage, named",
    [
        (nan_twice, r"tensor model\.encoder\.stages\.0\.3\.weight: 1 of its 576 values are NaN or infinite"),
        (lambda state: state["head.bias"].fill_(-float("inf")), r"tensor model\.head\.bias: 2 of its 2 values are NaN"),
        (lambda state: state["decoder.reduce.0.1.running_var"][:3].fill_(-0.5),
         r"tensor model\.decoder\.reduce\.0\.1\.running_var: 3 of its 8 values are negative"),
        (overflow, "the network's output on a probe image is not finite"),
    ],
)  # fmt: skip
def test_weights_that_cannot_give_a_finite_prediction_are_refused_at_load(tmp_path, damage, named):
    assert Segmenter.from_checkpoint(write_checkpoint(tmp_path / "good.ckpt"), device="cpu").classes == ["bg", "fg"]
    bad = write_checkpoint(tmp_path / "bad.ckpt", damage)
    with pytest.raises(InputError, match=rf"^{re.escape(str(bad))}: {named}.*; the checkpoint is damaged") as refused:
        Segmenter.from_checkpoint(bad, device="cpu")
    assert "\n" not in str(refused.value)


def test_a_network_that_cannot_take_the_probe_size_is_not_probed():
    class FixedSize(nn.Module):  # as timm's ViTs: an assertion on the input size
        def forward(self, x):
            assert x.shape[-1] == 224, "Input height doesn't match model (224)"

    check_output("fixed.ckpt", FixedSize(), 3)


def test_the_command_line_refuses_a_damaged_checkpoint_in_one_line(tmp_path, segattn):
    bad = write_checkpoint(tmp_path / "bad.ckpt", nan_twice)
    write_image(tmp_path / "in.png", np.zeros((8, 8, 3), np.uint8))
    result = segattn("infer", "--ckpt", bad, "--input", tmp_path / "in.png", "--output", tmp_path / "out")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [
        f"segattn: error: {bad}: tensor model.encoder.stages.0.3.weight: 1 of its 576 values are NaN or infinite; "
        "the checkpoint is damaged or its training diverged"
    ]


def test_lightning_commands_do_not_suggest_a_flag_they_lack(tmp_path, segattn):
    """validate/fit --ckpt_path take no --trust-checkpoint; the refusal must not suggest it."""
    marker = tmp_path / "code-ran"
    ckpt = write_malicious(tmp_path / "x.ckpt", marker)
    result = segattn("validate", "--config", REPO / "configs/demo.yaml", "--ckpt_path", ckpt, cwd=tmp_path)
    errors = [line for line in result.stderr.splitlines() if line.startswith("segattn: error:")]
    assert result.returncode == 2 and len(errors) == 1 and "refused to load" in errors[0], result.stderr[-3000:]
    assert "trust" not in result.stderr and "Traceback" not in result.stderr and not marker.exists()


def test_lightning_commands_refuse_a_damaged_checkpoint_before_resuming_it(tmp_path, segattn):
    """fit --ckpt_path would go on training NaNs; validate would score them."""
    bad = write_checkpoint(tmp_path / "bad.ckpt", nan_twice)
    for command in ("fit", "validate"):
        result = segattn(command, "--config", REPO / "configs/demo.yaml", "--ckpt_path", bad, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.strip().splitlines() == [
            f"segattn: error: {bad}: tensor model.encoder.stages.0.3.weight: 1 of its 576 values are NaN or "
            "infinite; the checkpoint is damaged or its training diverged"
        ], result.stderr


def test_a_volume_network_is_probed_with_a_volume():
    """check_output probes a `spatial_dims: 3` network with a 1×C×32³ ramp (a 2-D probe would
    fail inside it and leave it unprobed): finite weights pass, an infinite one is refused."""
    net = AttentionUNet(1, 3, widths=[4, 8, 16], spatial_dims=3)
    check_output("volume.ckpt", net, 1)
    with torch.no_grad():
        next(net.parameters()).fill_(float("inf"))
    with pytest.raises(InputError, match=r"volume\.ckpt: the network's output on a probe image is not finite"):
        check_output("volume.ckpt", net, 1)
