"""A non-editable install carries the built-in pipelines, the weights and the report template."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_non_editable_install_has_its_data_files(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(ROOT)], check=True, cwd=tmp_path)
    check = ("import multisr, multisr.runs.pipeline as p, multisr.sr.weights as m; from importlib import resources; "
             "assert multisr.__file__.startswith(%r), multisr.__file__; "
             "assert p.builtin_pipelines() == ['bicubic', 'merge', 'multiframe', 'presenters', 'single']; "
             "[p.load_pipeline(n) for n in p.builtin_pipelines()]; "
             "[m.load_model(name) for name in ('srcnn-955', 'srcnn-915', 'restore-merge')]; "
             "assert (resources.files('multisr') / 'templates' / 'report.html').is_file()") % str(target)
    subprocess.run([sys.executable, "-c", check], check=True, cwd=tmp_path, env={"PYTHONPATH": str(target)})
