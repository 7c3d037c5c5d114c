"""SRCNN 9-5-5's rate on a CUDA GPU in several precisions and batch sizes, tensors already on
the device (no host transfers), against dense matmul in the same precision.

Run: python3 benchmarks/gpu_srcnn_variants.py  (prints one line per variant)
"""
import time

import torch

from multisr.sr.weights import load_model


def timed(fn, repeats=10):
    fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main():
    torch.backends.cudnn.benchmark = True
    model = load_model(device="cuda")
    pad = model.shrink
    config = model.config
    flops_per_pixel = 2 * (config["f1"] ** 2 * config["n1"] + config["f2"] ** 2 * config["n1"] * config["n2"]
                           + config["f3"] ** 2 * config["n2"])
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        a = torch.randn(8192, 8192, device="cuda", dtype=dtype)
        matmul = 2 * 8192**3 / timed(lambda: a @ a, repeats=5)
        for batch in (1, 4):
            x = torch.rand(batch, 1, 1440 + 2 * pad, 1920 + 2 * pad, device="cuda")
            x = x.to(dtype).contiguous(memory_format=torch.channels_last)
            net = model.to(dtype)
            with torch.inference_mode():
                seconds = timed(lambda: net(x))
            rate = flops_per_pixel * batch * 1440 * 1920 / seconds
            print(f"{str(dtype):15} batch {batch}: SRCNN {rate / 1e12:6.1f} TFLOP/s, matmul {matmul / 1e12:6.1f} "
                  f"TFLOP/s, ratio {rate / matmul:.3f}, {seconds * 1e3 / batch:.2f} ms per 1920x1440 frame")
        model.float()


if __name__ == "__main__":
    main()
