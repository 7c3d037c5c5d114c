"""The camera-protocol "before" table: an older checkout of multisr run on camera bursts this one writes.

    git worktree add /tmp/old 2cda4a6
    for each Set5 image i: multisr simulate IMAGE --protocol camera --seed i --out BURSTS/NAME
    PYTHONPATH=/tmp/old python benchmarks/old_code_camera_bench.py \
        bicubic,single,presenters,multiframe,multiframe-camera OUT.json BURSTS

The old checkout's package and pipelines/*.toml are used (PYTHONPATH puts it first); BURSTS holds
one folder per burst with truth.png and truth.json (object_region). Prints and writes PSNR/SSIM per
burst and pipeline and the PSNR inside the moving object's region; each run's folder goes under
OUT (without its suffix).
"""
import json
import sys
from pathlib import Path

import multisr
print('multisr from', multisr.__file__)
from multisr.pipeline import load_pipeline
from multisr.runner import run_pipeline
from multisr.io import read_image
from multisr.metrics import score_image, score_luma
from multisr.color import luma
rows = {}
for burst in sorted(Path(sys.argv[3]).iterdir()):
    truth_json = json.loads((burst/'truth.json').read_text())
    truth,_ = read_image(burst/'truth.png')
    x,y,w,h = truth_json["object_region"]
    row = {}
    for name in sys.argv[1].split(","):
        out = Path(sys.argv[2]).with_suffix('') /f"{burst.name}-{name}"
        try:
            run_pipeline(load_pipeline(str(Path(multisr.__file__).parents[1] / 'pipelines' / f'{name}.toml')), burst, out_dir=out, n=20, use_cache=False)
        except Exception as e:
            row[name] = {"error": str(e)}; continue
        result,_ = read_image(out/'result.png')
        inside = (slice(y, y + h), slice(x, x + w))
        object_psnr = score_luma(luma(result)[inside], luma(truth)[inside], shave=0)["psnr"]
        row[name] = {**score_image(result, truth, shave=3), "object_psnr": object_psnr}
        print(burst.name, name, round(row[name]["psnr"],2), round(row[name]["object_psnr"],2), flush=True)
    rows[burst.name] = row
json.dump(rows, open(sys.argv[2], "w"), indent=1)
