"""``handcap estimate --ray``: many inputs on a Ray cluster (a local one with 2 CPUs, started here).

A folder of short synthetic clips and photos, one clip corrupted, must give through Ray the files a
plain run gives, with the same tracks and frames (values within 1e-5), the same error line and exit
code; a worker killed mid-run (SIGKILL to its process) has its task given out again and the run
completes; running again does no work. Ray must leave no process behind. The planning rules (names,
tasks, what counts as done) and ``--ray`` without ray installed are tested without a cluster.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from blender_addon.capture_format import load_capture
from core import cli
from core.engine.inputs import capture_paths
from core.scale_out.plan import PHOTOS_PER_TASK, Item, finished_hands, make_tasks

from .conftest import REPO

try:
    import ray
except ImportError:
    ray = None
needs_ray = pytest.mark.skipif(ray is None, reason="ray is not installed (pip install -e '.[ray]')")

CLIPS, PHOTOS, FRAMES = 3, 3, 12
WORKER_TITLE = "ray::CaptureWorker"          # the process title Ray gives the actor's process


# ------------------------------------------------------------------------------------ helpers

def estimate(*args, **popen) -> subprocess.Popen:
    """``python -m core estimate ARGS`` from the repository root, one torch thread per process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": REPO}
    return subprocess.Popen([sys.executable, "-m", "core", "estimate", *map(str, args)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def finish(process: subprocess.Popen, timeout: float = 240) -> tuple:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def processes() -> dict:
    """pid -> command line of every process on this machine."""
    found = {}
    for path in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(path, "rb") as f:
                found[int(path.split("/")[2])] = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            pass
    return found


def descendants(root: int) -> set:
    """Processes started (directly or not) by ``root``."""
    parent = {}
    for path in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(path) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if fields[0] != "Z":                                # zombies are gone already
                parent[int(path.split("/")[2])] = int(fields[1])
        except (OSError, IndexError, ValueError):
            pass
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in parent.items() if ppid in frontier} - found
        found |= frontier
    return found


def compare_folders(plain: str, other: str) -> None:
    """The same capture files, with the same tracks and frames (values within 1e-5)."""
    names = sorted(os.listdir(plain))
    assert sorted(os.listdir(other)) == names
    for name in names:
        a, b = load_capture(os.path.join(plain, name)), load_capture(os.path.join(other, name))
        assert a.source_path == b.source_path and a.fps == b.fps
        np.testing.assert_array_equal(a.image_size, b.image_size)
        np.testing.assert_allclose(a.K, b.K, atol=1e-5)
        assert [t.side for t in a.tracks] == [t.side for t in b.tracks], name
        for ta, tb in zip(a.tracks, b.tracks):
            np.testing.assert_array_equal(ta.frame_index, tb.frame_index)
            np.testing.assert_array_equal(ta.valid, tb.valid)
            for key in ("betas", "pose", "transl", "joints_3d", "keypoints_2d", "confidence"):
                np.testing.assert_allclose(getattr(ta, key), getattr(tb, key), atol=1e-5, rtol=0, err_msg=f"{name} {key}")


# ----------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """CLIPS clips (a render sliding over grey, 320x240, FRAMES frames), PHOTOS renders in photos/,
    and broken.mp4 (random bytes)."""
    from training.synth import SyntheticHands
    folder = tmp_path_factory.mktemp("media")
    (folder / "photos").mkdir()
    renders = SyntheticHands(count=CLIPS + PHOTOS, seed=5, split="heldout", size=256)
    images = [cv2.cvtColor(np.ascontiguousarray(renders[i]["image"].permute(1, 2, 0).numpy()), cv2.COLOR_RGB2BGR)
              for i in range(CLIPS + PHOTOS)]
    for i in range(PHOTOS):
        cv2.imwrite(str(folder / "photos" / f"photo{i}.png"), images[i])
    for c in range(CLIPS):
        writer = cv2.VideoWriter(str(folder / f"clip{c}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 24, (320, 240))
        hand = cv2.resize(images[PHOTOS + c], (180, 180), interpolation=cv2.INTER_AREA)
        for f in range(FRAMES):
            frame = np.full((240, 320, 3), 90, np.uint8)
            frame[30:210, 10 + 6 * f:190 + 6 * f] = hand
            writer.write(frame)
        writer.release()
    (folder / "broken.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, np.uint8).tobytes())
    return folder


@pytest.fixture(scope="module")
def plain(media, tmp_path_factory):
    """The plain run (no Ray) over the folder and its photos folder."""
    out = tmp_path_factory.mktemp("plain") / "out"
    code, _, err = finish(estimate(media, media / "photos", "-o", out))
    return code, err, out


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance with 2 CPUs for this module; afterwards no process of it may be left."""
    if ray is None:
        pytest.skip("ray is not installed")
    import logging
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    address = ray.get_runtime_context().gcs_address
    yield address
    started = descendants(os.getpid())
    ray.shutdown()
    deadline = time.monotonic() + 30
    while (left := descendants(os.getpid()) & started) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, {pid: processes().get(pid, "?") for pid in left}


# ------------------------------------------------------------------------- on the cluster

def error_lines(stderr: str) -> list:
    return [line for line in stderr.splitlines() if ": error: " in line]


@needs_ray
def test_ray_gives_the_plain_runs_files(media, plain, cluster, tmp_path):
    plain_code, plain_err, plain_out = plain
    out = tmp_path / "out"
    code, _, err = finish(estimate(media, media / "photos", "-o", out, "--ray", cluster, "--workers", 2))
    assert code == plain_code == 1, err                         # broken.mp4 failed, the rest went on
    assert error_lines(err) == error_lines(plain_err) == [
        f"handcap estimate: error: {media / 'broken.mp4'}: not a readable video (corrupt or unsupported codec)"]
    assert sorted(os.listdir(out)) == sorted([f"clip{c}.npz" for c in range(CLIPS)] + [f"photo{i}.npz" for i in range(PHOTOS)])
    assert sum(len(load_capture(str(out / n)).tracks) for n in os.listdir(out)) >= CLIPS   # hands were found
    compare_folders(str(plain_out), str(out))
    assert err.splitlines()[-1 - len(os.listdir(out))] == plain_err.splitlines()[-1 - len(os.listdir(out))].replace(
        str(plain_out), str(out))                                # the same summary line


@needs_ray
def test_killed_worker_is_retried_and_rerun_does_no_work(media, plain, cluster, tmp_path):
    _, _, plain_out = plain
    out = tmp_path / "out"
    run = estimate(media, media / "photos", "-o", out, "--ray", cluster, "--workers", 2, "--progress", "json")
    killed, lines = None, []
    for line in run.stdout:             # progress, one JSON object a line (and Ray's own note of the lost worker)
        if not line.startswith("{"):
            continue
        lines.append(line)
        event = json.loads(line)
        if killed is None and event["stage"] == "inputs" and event["done"] >= 1:
            busy = [pid for pid, command in processes().items() if command.startswith(WORKER_TITLE + ".run")]
            if busy:
                os.kill(busy[0], signal.SIGKILL)
                killed = busy[0]
    code, _, err = finish(run)
    assert killed is not None, "".join(lines)
    assert code == 1, err
    assert "a Ray worker was lost" in err and "is given out again (attempt 2 of 3)" in err, err
    assert json.loads(lines[-1])["failed"] == 1
    compare_folders(str(plain_out), str(out))                   # complete, and nothing temporary left

    before = {name: os.stat(out / name).st_mtime_ns for name in os.listdir(out)}
    start = time.perf_counter()
    code, _, err = finish(estimate(media / "clip0.mp4", media / "clip1.mp4", media / "photos", "-o", out,
                                   "--ray", cluster))
    seconds = time.perf_counter() - start
    assert code == 3, err                                        # two photos have no hand, as before
    assert "5 of 5 input(s) already have a complete capture file" in err and "Ray worker" not in err, err
    assert {name: os.stat(out / name).st_mtime_ns for name in os.listdir(out)} == before
    print(f"re-run with everything done: {seconds:.1f} s")

    code, _, err = finish(estimate(media, media / "photos", "-o", out, "--ray", cluster))
    assert code == 1 and "6 of 7 input(s) already have" in err                  # only broken.mp4 is tried again
    assert error_lines(err) == [f"handcap estimate: error: {media / 'broken.mp4'}: not a readable video "
                                "(corrupt or unsupported codec)"]
    assert {name: os.stat(out / name).st_mtime_ns for name in os.listdir(out)} == before


@needs_ray
def test_a_worker_larger_than_the_cluster_is_a_usage_error(media, cluster, tmp_path):
    code, _, err = finish(estimate(media / "clip0.mp4", "-o", tmp_path / "out", "--ray", cluster, "--cpus-per-task", 4))
    assert code == 2 and error_lines(err) == [
        "handcap estimate: error: --ray: a worker needs 4 CPU(s) and 0 GPU(s), and the Ray cluster has 2 CPU(s) and "
        "0 GPU(s) (give --workers N to wait for a cluster that grows)"], err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------- without a cluster

def test_tasks_group_photos_by_folder_and_videos_alone(tmp_path):
    files = [f"/a/v{i}.mp4" for i in range(2)] + [f"/a/p{i}.jpg" for i in range(PHOTOS_PER_TASK + 1)] + ["/b/p0.jpg"]
    items = [Item(i, f, c) for i, (f, c) in enumerate(zip(files, capture_paths(files, str(tmp_path))))]
    tasks = make_tasks(items)
    assert [[item.source for item in task.items] for task in tasks] == [
        ["/a/v0.mp4"], ["/a/v1.mp4"], files[2:2 + PHOTOS_PER_TASK], [files[-2]], ["/b/p0.jpg"]]
    assert [item.capture for item in items[-2:]] == [str(tmp_path / "p16.npz"), str(tmp_path / "p0_2.npz")]


def test_done_means_a_whole_capture_of_this_very_input(media, plain, tmp_path):
    _, _, plain_out = plain
    clip = str(media / "clip0.mp4")
    item = Item(0, clip, str(plain_out / "clip0.npz"))
    assert finished_hands(item, overlay=False) == len(load_capture(item.capture).tracks)
    assert finished_hands(item, overlay=True) is None                            # no overlay was made
    assert finished_hands(Item(0, str(media / "clip1.mp4"), item.capture), overlay=False) is None   # another input's
    assert finished_hands(Item(0, clip, str(tmp_path / "clip0.npz")), overlay=False) is None         # not there
    (tmp_path / "clip0.npz").write_bytes(b"PK\x03\x04 half a file")
    assert finished_hands(Item(0, clip, str(tmp_path / "clip0.npz")), overlay=False) is None


def test_ray_options_without_ray_are_usage_errors(tmp_path, monkeypatch, capsys):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    photo = os.path.join(REPO, "core", "assets", "demo_hand.jpg")
    assert cli.main(["estimate", photo, "-o", str(tmp_path / "out"), "--ray"]) == 2
    assert capsys.readouterr().err.strip() == ("handcap estimate: error: --ray needs the ray package, which is not "
                                               "installed: pip install -e '.[ray]' (or pip install 'ray==2.60.0')")
    assert cli.main(["estimate", photo, "-o", str(tmp_path / "out"), "--workers", "2"]) == 2
    assert "--workers is an option of --ray" in capsys.readouterr().err
    monkeypatch.undo()
    if ray is not None:
        assert cli.main(["estimate", "--ray", str(tmp_path), photo, "-o", str(tmp_path / "out")]) == 2
        assert "not a Ray address; put the inputs before --ray" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@needs_ray
def test_blender_batch_passes_ray_to_the_engine(media, plain, cluster, tmp_path):
    """batch.py --ray: one engine run on Ray into OUT/captures (resumed here: the plain run's capture
    files are there already, so only broken.mp4 is tried), then a .blend per input."""
    pytest.importorskip("bpy")
    _, _, plain_out = plain
    out = tmp_path / "out"
    (out / "captures").mkdir(parents=True)
    for c in range(CLIPS):
        os.link(plain_out / f"clip{c}.npz", out / "captures" / f"clip{c}.npz")
    env = {**os.environ, "HANDCAP_PYTHON": sys.executable, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, os.path.join(REPO, "blender_addon", "batch.py"), str(media), "-o", str(out),
                             f"--ray={cluster}"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines() == [f"handcap batch: error: {media / 'broken.mp4'}: not a readable video "
                                          "(corrupt or unsupported codec)"]
    assert sorted(os.listdir(out)) == ["captures"] + [f"clip{c}.blend" for c in range(CLIPS)]
    assert f"handcap batch: {CLIPS} converted, 1 failed" in result.stdout


def test_ray_option_reaches_the_engine_command():
    from blender_addon.engine import EstimateOptions
    assert EstimateOptions().arguments() == []
    assert EstimateOptions(ray="").arguments() == ["--ray"]
    assert EstimateOptions(ray="ray://head:10001", hand="left").arguments() == ["--hand", "left", "--ray=ray://head:10001"]
