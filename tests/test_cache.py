"""The run cache: what a rerun reuses, what it recomputes, and that a killed run leaves nothing false."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import multisr
from multisr.cli import cli
from multisr.sr.weights import load_model, save_weights


def run(frames, out, *extra):
    result = CliRunner().invoke(cli, ["run", str(frames), "--n", "5", "--out", str(out), *map(str, extra)])
    assert result.exit_code == 0, result.output
    return json.loads((out / "run.json").read_text())


def computed(record):
    return [stage["name"] for stage in record["stages"] if not stage["cached"]]


ALL = ["load", "register", "upscale", "srcnn", "realign", "fuse"]


def test_identical_rerun_computes_nothing_and_gives_the_same_result(tiny_burst, tmp_path):
    out = tmp_path / "run"
    assert computed(run(tiny_burst, out)) == ALL
    first = (out / "result.png").read_bytes()
    assert computed(run(tiny_burst, out)) == []
    assert (out / "result.png").read_bytes() == first


def test_changing_a_fusion_parameter_recomputes_only_the_fusion(tiny_burst, tmp_path):
    out = tmp_path / "run"
    run(tiny_burst, out)
    assert computed(run(tiny_burst, out, "--set", "fuse.method=mean")) == ["fuse"]


def test_changing_the_weights_recomputes_srcnn_and_what_follows(tiny_burst, tmp_path):
    out = tmp_path / "run"
    weights = tmp_path / "weights.pt"
    model = load_model("srcnn-955")
    save_weights(model, weights, scale=3, meta={})
    run(tiny_burst, out, "--set", f'srcnn.model="{weights}"')
    with torch.no_grad():
        model.reconstruct.bias += 0.01  # same file name, other contents
    save_weights(model, weights, scale=3, meta={})
    assert computed(run(tiny_burst, out, "--set", f'srcnn.model="{weights}"')) == ["srcnn", "realign", "fuse"]


def test_a_tampered_artifact_is_recomputed_not_trusted(tiny_burst, tmp_path):
    out = tmp_path / "run"
    run(tiny_burst, out)
    path = out / "stages" / "upscale" / "hr.npy"
    array = np.load(path)
    array[0, 0, 0] += 0.5
    np.save(path, array)
    assert computed(run(tiny_burst, out)) == ["upscale"]  # recomputed to the same key: later stages still match


def test_no_cache_matches_the_cached_run(tiny_burst, tmp_path):
    run(tiny_burst, tmp_path / "a")
    run(tiny_burst, tmp_path / "b", "--no-cache")
    assert (tmp_path / "a" / "result.png").read_bytes() == (tmp_path / "b" / "result.png").read_bytes()


def test_open_run_reads_every_stage_without_recomputing(tiny_burst, tmp_path):
    out = tmp_path / "run"
    run(tiny_burst, out)
    opened = multisr.open_run(out)
    assert opened.stages == ALL
    assert opened["load"]["frames"].shape[0] == 5 and opened["load"]["names"][0] == "frame_000.png"
    assert opened["srcnn"]["hr"].shape[1:3] == tuple(3 * s for s in opened["load"]["frames"].shape[1:3])
    assert opened["realign"]["valid"].dtype == bool
    assert np.allclose(opened.transforms["matrices"], opened["register"]["matrices"])
    assert np.abs(opened.result - np.clip(opened["fuse"]["result"], 0, 1)).max() <= 0.5 / 255 + 1e-6
    with pytest.raises(KeyError, match="no stage 'nope'"):
        opened["nope"]
    table = CliRunner().invoke(cli, ["stages", str(out)])
    assert table.exit_code == 0 and "frames 5x" in table.output
    assert "NoneType" not in table.output and "known" not in table.output  # a burst without known matrices


def test_a_killed_run_resumes_to_the_same_result(tiny_burst, tmp_path):
    reference, out = tmp_path / "uninterrupted", tmp_path / "killed"
    run(tiny_burst, reference, "--no-cache")
    command = [sys.executable, "-c", "from multisr.cli import cli; cli()", "run", str(tiny_burst), "--n", "5",
               "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out / "stages" / "upscale" / "meta.json").exists():  # SRCNN starts now
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "result.png").exists()
    for folder in (out / "stages").iterdir():  # whatever is there under a real name is complete
        if not folder.name.startswith("."):
            assert (folder / "meta.json").is_file()
    record = run(tiny_burst, out)
    assert "srcnn" in computed(record) and "load" not in computed(record)
    assert (out / "result.png").read_bytes() == (reference / "result.png").read_bytes()


def _folder_bytes(folder) -> int:
    """Bytes of the files under ``folder``, not following links (a run folder links into the cache)."""
    return sum(os.path.getsize(os.path.join(top, name)) for top, _, names in os.walk(folder)
               for name in names if not os.path.islink(os.path.join(top, name)))


def test_the_cache_is_shared_by_run_folders_and_by_compare(tiny_burst, tmp_path, own_stage_cache):
    """A run into another folder takes every stage from the cache; compare after run recomputes
    nothing of that pipeline, and its other pipeline takes load and register from it; the report
    holds links to the stage entries, not copies of them."""
    run(tiny_burst, tmp_path / "a")
    assert computed(run(tiny_burst, tmp_path / "b")) == []
    assert (tmp_path / "b" / "result.png").read_bytes() == (tmp_path / "a" / "result.png").read_bytes()
    assert (tmp_path / "b" / "stages" / "srcnn").resolve() == (tmp_path / "a" / "stages" / "srcnn").resolve()
    report = tmp_path / "report"
    result = CliRunner().invoke(cli, ["compare", str(tiny_burst), "--n", "5", "--out", str(report),
                                      "--pipelines", "presenters,multiframe"])
    assert result.exit_code == 0, result.output
    records = {name: json.loads((report / "runs" / name / "run.json").read_text()) for name in ("presenters", "multiframe")}
    assert computed(records["presenters"]) == []
    assert computed(records["multiframe"]) == ["reconstruct", "restore"]
    stacks = sum(path.stat().st_size for path in own_stage_cache.rglob("hr.npy"))
    assert _folder_bytes(report) < stacks / 4, (_folder_bytes(report), stacks)  # measured: a 16th (0.26 MB)


def test_clearing_the_cache_waits_for_no_run_and_leaves_runs_readable_with_one_line(tiny_burst, tmp_path,
                                                                                    own_stage_cache):
    import fcntl

    from multisr.errors import UserError

    out = tmp_path / "run"
    run(tiny_burst, out)
    with open(own_stage_cache / ".lock", "a") as handle:  # a run using the cache holds this
        fcntl.flock(handle, fcntl.LOCK_SH)
        refused = CliRunner().invoke(cli, ["cache", "--clear"])
        assert refused.exit_code == 2 and "a multisr run is using the cache" in refused.output
    cleared = CliRunner().invoke(cli, ["cache", "--clear"])
    assert cleared.exit_code == 0 and "cleared" in cleared.output
    assert not list(own_stage_cache.glob("*/*"))
    with pytest.raises(UserError, match="is gone"):
        multisr.open_run(out)["srcnn"]
    assert computed(run(tiny_burst, out)) == ALL  # and a rerun fills it again


def test_an_intact_entry_is_kept_when_another_run_saves_the_same_key(tmp_path):
    """Two runs that compute one stage at once: the second to finish keeps the first's entry (a
    run may be reading it) and gets its arrays from there."""
    from multisr.storage.cache import new_entry, save_stage
    from multisr.storage.stacks import Stack

    entry = tmp_path / "cache" / "upscale" / "k"
    for value in (1.0, 2.0):
        workspace = new_entry(entry)
        stack = Stack.create(workspace / "hr.npy", (2, 4, 4))
        stack[:] = value
        outputs = save_stage(entry, {"key": "k", "record": {}}, {"hr": stack}, workspace)
        assert outputs["hr"].path == entry / "hr.npy" and not workspace.exists()
    assert np.all(Stack(entry / "hr.npy")[:] == 1.0)


@pytest.mark.parametrize("pipeline", ["presenters", "multiframe"])
def test_a_burst_in_memory_gives_what_its_files_give(tiny_burst, tmp_path, pipeline):
    """run_frames on the frames as arrays equals run_pipeline on their files: the same result.png
    pixels, registration and frames left out; with the cache, a second call computes nothing."""
    from multisr.storage.io import read_image, to_uint
    from multisr.runs.pipeline import load_pipeline
    from multisr.runs.engine import run_frames
    from multisr.runs.runner import run_pipeline

    loaded = load_pipeline(pipeline)
    files = sorted(tiny_burst.glob("frame_*.png"))[:5]
    frames = np.stack([read_image(path)[0] for path in files])
    record = run_pipeline(loaded, tiny_burst, out_dir=tmp_path / "run", n=5, use_cache=False)
    in_memory = run_frames(loaded, frames, names=[path.name for path in files])
    written = cv2.imread(str(tmp_path / "run" / "result.png"))[..., ::-1]
    assert np.array_equal(to_uint(in_memory.image), written)
    transforms = json.loads((tmp_path / "run" / "transforms.json").read_text())
    assert np.array_equal(in_memory.matrices, np.array(transforms["matrices"]))
    assert in_memory.record["excluded"] == record["excluded"]
    assert in_memory.record["reference_frame"] == record["reference_frame"]
    cached = [run_frames(loaded, frames, use_cache=True) for _ in range(2)][1]
    assert computed(cached.record) == [] and np.array_equal(cached.image, in_memory.image)


def test_registration_is_typed_in_memory_and_json_only_in_the_cache(tiny_burst, tmp_path):
    """The register stage hands a Registration per frame to the next stages, the cache keeps it as
    JSON, and a notebook reading the run folder gets the same Registrations back (matrix within
    float64 round-off); an entry whose registration JSON this version cannot read is recomputed."""
    from multisr.runs.engine import run_frames
    from multisr.storage.io import read_image
    from multisr.runs.pipeline import load_pipeline
    from multisr.registration.burst import Registration
    from multisr.storage.rundir import open_run
    from multisr.runs.runner import run_pipeline

    files = sorted(tiny_burst.glob("frame_*.png"))[:5]
    frames = np.stack([read_image(path)[0] for path in files])
    presenters = load_pipeline("presenters")
    in_memory = run_frames(presenters, frames, names=[path.name for path in files], reference=0)
    run_pipeline(presenters, tiny_burst, out_dir=tmp_path / "run", n=5, reference=0)
    stored = open_run(tmp_path / "run")["register"]["registration"]
    assert all(isinstance(r, Registration) for r in stored)
    assert [r.frame for r in stored] == [path.name for path in files]
    assert np.allclose(np.stack([r.matrix for r in stored]), in_memory.matrices, atol=1e-12)

    meta_path = tmp_path / "run" / "stages" / "register" / "meta.json"
    meta = json.loads(meta_path.read_text())
    for entry in meta["values"]["registration"]:
        entry["renamed_field"] = entry.pop("success")  # as an older or newer version might have written it
    body = {name: meta[name] for name in ("key", "record", "values", "digests", "stacks")}
    meta["sha256"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()  # intact, but unreadable
    meta_path.write_text(json.dumps(meta))
    record = run_pipeline(presenters, tiny_burst, out_dir=tmp_path / "run", n=5, reference=0)
    assert "register" in computed(record)


@pytest.mark.parametrize("text, limit", [("20G", 20 * 10**9), ("500M", 5 * 10**8), ("1.5g", 15 * 10**8), ("0", 0),
                                         ("123", 123), ("64KB", 64000), ("", 20 * 10**9)])
def test_the_cache_limit_is_read_from_the_environment(monkeypatch, text, limit):
    from multisr.storage.cachedir import cache_limit

    monkeypatch.setenv("MULTISR_CACHE_LIMIT", text)
    assert cache_limit() == limit


def test_a_bad_cache_limit_is_one_line_before_the_run(tiny_burst, tmp_path, monkeypatch):
    from conftest import assert_one_line_error

    monkeypatch.setenv("MULTISR_CACHE_LIMIT", "lots")
    result = CliRunner().invoke(cli, ["run", str(tiny_burst), "--n", "3", "--out", str(tmp_path / "out")])
    assert_one_line_error(result, "MULTISR_CACHE_LIMIT", "expected a size such as 20G", "'lots'")
    assert not (tmp_path / "out" / "result.png").exists()


def test_runs_keep_the_cache_within_its_limit_removing_the_entries_used_longest_ago(tiny_burst, tmp_path,
                                                                                     own_stage_cache, monkeypatch):
    """Three-frame runs A, B, then A again (from the cache), then C under a limit that holds two
    runs' entries: B's, used longest ago, are removed; A's and C's stay. A run's own entries stay
    even when they alone are over the limit. Without a limit reached, nothing is removed."""
    from multisr.storage.cachedir import usage

    def bicubic(start, out):
        run(tiny_burst, tmp_path / out, "--n", 3, "--start", start, "--pipeline", "bicubic")
        return {stage: (tmp_path / out / "stages" / stage).resolve() for stage in ("load", "select_reference", "upscale")}

    a = bicubic(0, "a")
    one_run = usage(own_stage_cache)[1]
    b = bicubic(3, "b")
    assert all(entry.is_dir() for entry in [*a.values(), *b.values()])  # the default limit is far away
    assert computed(run(tiny_burst, tmp_path / "a", "--n", 3, "--start", 0, "--pipeline", "bicubic")) == []
    monkeypatch.setenv("MULTISR_CACHE_LIMIT", str(int(2.5 * one_run)))
    c = bicubic(1, "c")
    assert all(entry.is_dir() for entry in [*a.values(), *c.values()])
    assert not any(entry.exists() for entry in b.values())
    assert usage(own_stage_cache)[1] <= 2.5 * one_run

    monkeypatch.setenv("MULTISR_CACHE_LIMIT", "0")
    d = bicubic(2, "d")
    assert all(entry.is_dir() for entry in d.values()) and usage(own_stage_cache)[0] == 3


def test_a_run_short_of_disk_makes_room_by_removing_entries_it_does_not_use(tiny_burst, tmp_path, own_stage_cache,
                                                                            monkeypatch):
    """The disk is said to have the run's estimate plus 1 MB, less what the cache holds: with an
    earlier run's entries (about 4.5 MB) there, a run of other frames is short of room; alone, it
    removes as many of them as it needs, least recently used first, and goes; while another run
    holds the cache it is refused, one line, and the entries stay."""
    import fcntl
    import shutil as shell

    from conftest import assert_one_line_error
    from multisr.storage.cachedir import usage

    earlier = run(tiny_burst, tmp_path / "a", "--start", 0)
    budget = earlier["disk_bytes"] + 10**6
    real = shell.disk_usage(tmp_path)
    monkeypatch.setattr("multisr.runs.engine.shutil.disk_usage",
                        lambda path: real._replace(free=budget - usage(own_stage_cache)[1]))
    held = [(tmp_path / "a" / "stages" / stage).resolve() for stage in ALL]

    with open(own_stage_cache / ".lock", "a") as handle:  # another run using the cache
        fcntl.flock(handle, fcntl.LOCK_SH)
        refused = CliRunner().invoke(cli, ["run", str(tiny_burst), "--n", "5", "--start", "1", "--out",
                                           str(tmp_path / "b")])
    assert_one_line_error(refused, "the run would write about", "GB are free")
    assert all(entry.is_dir() for entry in held)

    record = run(tiny_burst, tmp_path / "b", "--start", 1)
    assert computed(record) == ALL[1:]  # its frames were loaded (and kept) by the refused attempt
    removed = [entry for entry in held if not entry.exists()]
    assert removed and removed == held[: len(removed)]  # the earliest first, only as many as needed
