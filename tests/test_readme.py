"""The README's examples, as a user pastes them: every fenced block marked `<!-- quick -->` runs,
in order, in an empty folder holding only configs/ and tools/ (the first block trains the
checkpoint that the others use)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

pytestmark = pytest.mark.slow
QUICK_BLOCK = re.compile(r"^<!-- quick[^\n]*-->\n```(bash|python)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def quick_blocks() -> list[tuple[str, str]]:
    return QUICK_BLOCK.findall((REPO / "README.md").read_text())


def test_the_readme_marks_its_runnable_examples():
    languages = [language for language, _ in quick_blocks()]
    assert languages.count("bash") >= 2 and languages.count("python") >= 1


def test_readme_quick_blocks_run_as_pasted(tmp_path):
    for folder in ("configs", "tools"):
        (tmp_path / folder).symlink_to(REPO / folder)
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for language, code in quick_blocks():
        command = ["bash", "-e", "-c", code] if language == "bash" else [sys.executable, "-c", code]
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"README block failed:\n{code}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert len(list((tmp_path / "runs/demo/infer").glob("*.png"))) == 100
    assert (tmp_path / "runs/demo/model.onnx").is_file() and (tmp_path / "runs/demo/eval/metrics.json").is_file()
