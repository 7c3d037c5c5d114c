#!/usr/bin/env bash
# The GPU check (issues 7 and 12), as one script: the GPU tests, where the srcnn stage's time goes,
# then `multisr bench speed` on CUDA.
# Run from the repository root on a machine with an NVIDIA GPU whose python3 has torch (CUDA),
# numpy, scipy, opencv-python-headless, click, tqdm, scikit-image, matplotlib and jinja2.
# Wheels of anything missing (imreg-dft) go in .device/whl, the Set5 folder in
# .device/data/eval/Set5. Results are written to $OUT (default: gpu-check/).
set -uo pipefail
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MULTISR_DATA="$PWD/.device/data"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -m pip install -q --no-index --no-deps --no-build-isolation .device/whl/*.whl -e . 2>&1 | tail -3
python3 -c "import torch, multisr; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/gpu.txt"
python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_srcnn.py 2>&1 | tee "$OUT/pytest.txt" | tail -5
python3 benchmarks/gpu_srcnn_stage.py 2>&1 | tee "$OUT/srcnn-stage.txt"
multisr bench speed --device cuda --sizes ${SIZES:-200x150,640x480} --pipelines ${PIPELINES:-single,presenters,multiframe} \
    --json > "$OUT/bench-speed-cuda.json" 2> "$OUT/bench-speed-cuda.err"
echo "bench speed exit $?"
python3 - "$OUT/bench-speed-cuda.json" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
print("device", data["device"], "matmul GFLOP/s", round(data["matmul_gflops"]))
for row in data["rows"]:
    stages = ", ".join(f"{k} {v:.3f}" for k, v in row["stages"].items())
    print(row["size"], row["pipeline"], f"total {row['seconds']:.2f} s", f"peak {row['peak_mib']:.0f} MiB",
          f"srcnn {row.get('srcnn_gflops', 0):.0f} GFLOP/s", "|", stages)
PY
