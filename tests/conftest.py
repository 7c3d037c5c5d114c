"""Shared fixtures: scenes and bursts the tests make themselves, and the shared data folder."""
import os
from pathlib import Path

import numpy as np
import pytest

from multisr.scenes import licence_plate
from multisr.simulate import save_burst, simulate_burst

DATA = Path(os.environ.get("MULTISR_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def shared_data(*parts: str) -> Path:
    """A path under the shared data folder; skips the test when that data is not on this machine."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not here (set MULTISR_DATA to the shared data folder)")
    return path


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
