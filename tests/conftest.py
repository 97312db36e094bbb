from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SEGATTN_SHARED_DATA", REPO.parent / "shared" / "data"))
CONFIG_DRIVE = REPO.parent / "shared" / "data" / "drive"  # configs/drive.yaml's relative ../shared/data
needs_config_drive = pytest.mark.skipif(
    not CONFIG_DRIVE.is_dir(), reason=f"DRIVE not found at {CONFIG_DRIVE} (configs/drive.yaml's path)"
)
CONFIG_HIPPOCAMPUS = REPO.parent / "shared" / "data" / "hippocampus"  # configs/hippocampus.yaml's
needs_config_hippocampus = pytest.mark.skipif(
    not CONFIG_HIPPOCAMPUS.is_dir(),
    reason=f"MSD Hippocampus not found at {CONFIG_HIPPOCAMPUS} (configs/hippocampus.yaml's path)",
)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic set shared by the tests: 24 train + 8 val images of 64×64."""
    from segattn.data import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("synthetic") / "set", n_train=24, n_val=8, size=64, seed=3)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, the real data sets; tests that need it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set SEGATTN_SHARED_DATA)")
    return SHARED_DATA


class Result(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def segattn(capsys, monkeypatch):
    """Runs the `segattn` command in this process (its `main`, as the console script does; no
    7-second interpreter start), optionally in another folder: (exit code, stdout, stderr)."""
    from segattn.cli import main

    def run(*args, cwd: Path | None = None) -> Result:
        capsys.readouterr()
        with monkeypatch.context() as patch:
            if cwd is not None:
                patch.chdir(cwd)
            try:
                main([str(a) for a in args])
                code = 0
            except SystemExit as exit_:
                code = exit_.code
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run
