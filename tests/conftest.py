"""Shared fixtures and helpers: scenes and bursts the tests make themselves, the shared data folder,
and running the command line."""
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from multisr.cli import cli
from multisr.research.scenes import licence_plate
from multisr.research.simulate import save_burst, simulate_burst

REPO_DATA = Path(__file__).resolve().parent / "data"  # Set5 and its MATLAB x3 files (SOURCES.md there)
DATA = Path(os.environ.get("MULTISR_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def shared_data(*parts: str) -> Path:
    """A path under ``tests/data`` (the evaluation sets, in the repository) or else under the
    shared data folder (real bursts); skips the test when the data is in neither."""
    for root in (REPO_DATA, DATA):
        if root.joinpath(*parts).exists():
            return root.joinpath(*parts)
    pytest.skip(f"{DATA.joinpath(*parts)} is not here (set MULTISR_DATA to the shared data folder)")


@pytest.fixture(autouse=True)
def own_stage_cache(tmp_path, monkeypatch) -> Path:
    """Each test its own stage cache (``MULTISR_CACHE``, which child processes inherit), so that no
    test finds stages another test computed."""
    folder = tmp_path / "stage-cache"
    monkeypatch.setenv("MULTISR_CACHE", str(folder))
    return folder


@pytest.fixture(scope="session")
def plate() -> np.ndarray:
    """A rendered licence plate, ``(150, 240, 3)`` float32."""
    return licence_plate(width=240, height=150)


@pytest.fixture(scope="session")
def plate_burst(plate):
    """An 8-frame simulated burst of the plate in memory (frames about 74x40), seed 11."""
    return simulate_burst(plate, n=8, seed=11)


@pytest.fixture(scope="session")
def tiny_burst(plate, tmp_path_factory) -> Path:
    """A 6-frame simulated burst of the plate on disk (frames about 64x36), with its truth."""
    folder = tmp_path_factory.mktemp("burst")
    save_burst(simulate_burst(plate, n=6, seed=3), folder)
    return folder


def invoke(*args):
    """``multisr ARGS`` in this process (click's runner), arguments as strings."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result, *fragments):
    """Exit status 2, one ``Error:`` line (the last one) holding every fragment, no traceback."""
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and result.stderr.rstrip().endswith(errors[0]), result.stderr  # progress bars may precede it
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def copy_burst(source, target, n=None):
    """The first ``n`` (default all) ``frame_*.png`` of ``source`` copied into a new folder ``target``."""
    target.mkdir()
    for path in sorted(source.glob("frame_*.png"))[:n]:
        shutil.copy(path, target / path.name)
    return target
