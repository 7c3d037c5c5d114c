"""Where the srcnn stage's time goes on a CUDA GPU: a 20-frame colour stack of 1920x1440 (the
HR frames of a 640x480 burst) through :func:`sharpen_frames` as the stage calls it, against the
network alone on Y already on the device, and the copies to and from the device.

Run: python3 benchmarks/gpu_srcnn_stage.py [--autotune]  (prints one line per measurement,
seconds; --autotune: cuDNN times its algorithms on the first call of each shape and keeps the
fastest, instead of its heuristics, which multisr uses: on an H200 the heuristics' choice ran
this network in 0.081 s for 20 frames, the autotuner's in 0.140 s,
docs/results/gpu-srcnn-stage-h200.txt)
"""
import sys
import time

import numpy as np
import torch

from gpu_srcnn_variants import timed  # the sibling script (run from the repository root)
from multisr.sr.inference import _network_on_luma, sharpen_frames
from multisr.sr.weights import load_model


def main():
    frames = np.random.default_rng(0).random((20, 1440, 1920, 3), dtype=np.float32)
    tick = time.perf_counter()
    model = load_model(device="cuda")
    torch.backends.cudnn.benchmark = "--autotune" in sys.argv
    print(f"load_model {time.perf_counter() - tick:.3f}, cuDNN autotune {torch.backends.cudnn.benchmark}")
    tick = time.perf_counter()
    sharpen_frames(frames[:2], model)
    print(f"first call, 2 frames {time.perf_counter() - tick:.3f}")
    print(f"sharpen_frames, 20 frames {timed(lambda: sharpen_frames(frames, model), repeats=3):.3f}")
    print(f"sharpen_frames, 20 frames, batch 1 {timed(lambda: sharpen_frames(frames, model, batch_size=1), repeats=3):.3f}")
    y = torch.rand(20, 1440, 1920, device="cuda")
    with torch.inference_mode():
        print(f"network alone on Y on the device, 20 frames {timed(lambda: [_network_on_luma(y[k:k + 1], model, None) for k in range(20)]):.3f}")
    host = torch.from_numpy(frames)
    pinned = host.pin_memory()
    print(f"host->device, 20 RGB frames, pageable {timed(lambda: host.to('cuda')):.3f}, pinned {timed(lambda: pinned.to('cuda', non_blocking=True)):.3f}")
    on_device = pinned.to("cuda")
    print(f"device->host, 20 RGB frames {timed(lambda: on_device.cpu()):.3f}")


if __name__ == "__main__":
    main()
