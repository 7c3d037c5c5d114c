"""Write tests/data/solve/camera-burst.npz: a small camera-protocol burst, its truth, and what the
installed multisr's solve makes of it: ``reconstruct`` with a given PSF and no motion refinement
(one solve of four rounds), and ``reconstruct`` as the pipeline calls it.

``tests/test_solve.py`` compares today's solve with the file made by the solve before issue 25
(commit 6113983): ``git worktree add /tmp/old 6113983 && PYTHONPATH=/tmp/old python
benchmarks/solve_fixture.py tests/data/solve/camera-burst.npz``. The burst is stored, not made
again, so the comparison does not depend on the simulation's library versions.
"""
import sys

import numpy as np

from multisr.imaging.color import luma
from multisr.reconstruction.reconstruct import reconstruct
from multisr.research.simulate import simulate_camera_burst
from multisr.research.scenes import licence_plate


def main(path: str) -> None:
    burst = simulate_camera_burst(licence_plate(width=300, height=180), n=8, seed=5)
    y = np.stack([luma(frame) for frame in burst.frames]).astype(np.float32)
    solved, _, _ = reconstruct(y, burst.matrices, anchor=0, psf="box+0.3", refine_rounds=0, workers=1)
    reconstructed, refined, info = reconstruct(y, burst.matrices, anchor=0, workers=1)
    np.savez_compressed(path, frames_y=y, matrices=burst.matrices, truth_y=luma(burst.truth).astype(np.float32),
                        solved=solved, reconstructed=reconstructed, psf=info["psf"])
    print(path, y.shape, info["psf"])


if __name__ == "__main__":
    main(sys.argv[1])
