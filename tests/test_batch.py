"""multisr batch: bursts as tasks on a Dask LocalCluster, each equal to its own multisr run, a bad
burst failing alone, a rerun computing nothing."""
import json

from conftest import copy_burst, invoke
from multisr.outputs.batch import find_bursts


def test_a_batch_equals_separate_runs_and_a_bad_burst_fails_alone(tiny_burst, tmp_path):
    inputs = tmp_path / "bursts"
    inputs.mkdir()
    for name, n in (("a", None), ("b", 5), ("c", 4)):  # three different bursts
        copy_burst(tiny_burst, inputs / name, n=n)
    (inputs / "d").mkdir()
    (inputs / "d" / "frame_000.png").write_bytes(b"\x89PNG broken")  # fails alone
    out = tmp_path / "out"
    result = invoke("batch", inputs, "--out", out, "--n", 4, "--workers", 2, "--threads", 1)
    assert result.exit_code == 1, result.output
    summary = json.loads((out / "batch.json").read_text())
    assert [row["burst"].rsplit("/", 1)[1] for row in summary["bursts"]] == ["a", "b", "c", "d"]
    assert summary["failed"] == 1 and "expected at least 4 frames" in summary["bursts"][3]["error"]
    for name in "abc":
        alone = tmp_path / f"alone-{name}"
        assert invoke("run", inputs / name, "--n", 4, "--out", alone, "--no-cache").exit_code == 0
        assert (out / name / "result.png").read_bytes() == (alone / "result.png").read_bytes()
    again = invoke("batch", inputs / "a", inputs / "b", "--out", out, "--n", 4, "--workers", 2, "--threads", 1)
    assert again.exit_code == 0, again.output
    assert all(row["computed"] == [] for row in json.loads((out / "batch.json").read_text())["bursts"])
    every = invoke("batch", inputs / "a", inputs / "b", inputs / "c", "--out", tmp_path / "all", "--workers", 2,
                   "--threads", 1)  # by default every frame of each burst, however many
    assert every.exit_code == 0, every.output
    assert [row["n"] for row in json.loads((tmp_path / "all" / "batch.json").read_text())["bursts"]] == [6, 5, 4]


def test_inputs_are_bursts_videos_or_folders_of_them(tiny_burst, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    copy_burst(tiny_burst, folder / "one")
    (folder / "clip.mkv").write_bytes(b"")
    (folder / "notes").mkdir()
    assert [p.name for p in find_bursts([folder])] == ["clip.mkv", "one"]
    assert find_bursts([tiny_burst]) == [tiny_burst]
    result = invoke("batch", tmp_path / "nothing", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "--inputs" not in result.output and "it does not exist" in result.output
