"""Checkpoint loading is safe: no code runs on load unless the user trusts the file."""

import os

import pytest
import torch

from segattn import InputError, MissingPathError, Segmenter
from segattn.checkpoint import RECORD_KEY, load, make_record
from segattn.data.transforms import eval_pipeline, serialize


class MakesADirectoryWhenUnpickled:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (str(self.path),))


def record():
    return make_record("attention_unet", {"widths": [8, 16]}, 3, ["bg", "fg"], [[0, 0, 0], [255, 0, 0]],
                       serialize(eval_pipeline("imagenet", 3)))  # fmt: skip


def test_a_checkpoint_crafted_to_run_code_is_refused_and_the_code_does_not_run(tmp_path):
    marker = tmp_path / "code-ran"
    torch.save(
        {RECORD_KEY: record(), "state_dict": {}, "payload": MakesADirectoryWhenUnpickled(marker)}, tmp_path / "x.ckpt"
    )
    with pytest.raises(InputError, match="--trust-checkpoint"):
        load(tmp_path / "x.ckpt")
    with pytest.raises(InputError, match="--trust-checkpoint"):
        Segmenter.from_checkpoint(tmp_path / "x.ckpt")
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
