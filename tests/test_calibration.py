"""handcap calibrate: a rendered board clip pair gives back the rig it was rendered with, the hands alone give
back a rig from synthetic landmark correspondences, and bad clips are one clear error line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from core.calibration.board import BoardFinder
from core.calibration.spec import BoardSpec
from core.cli import main as handcap
from core.multiview.cameras import load_cameras
from training.calibration_eval import compare, synthetic_tracks
from training.synth.board_clips import BOARD, calibrate_arguments, random_rig, render_clips

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def board_rig(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("board"))
    return out, render_clips(out, views=2, frames=14, seed=5, size=(640, 480))


def test_board_clips_give_back_the_true_rig(board_rig, capsys):
    out, paths = board_rig
    assert handcap(calibrate_arguments(out, paths)) == 0
    printed = capsys.readouterr()
    assert "rms after BA px" in printed.out and "view2.avi" in printed.out
    truth, found = load_cameras(os.path.join(out, "cameras.json")), load_cameras(os.path.join(out, "calibrated.json"))
    first, second = compare(truth, found)
    assert first["rotation_deg"] == 0 and first["position_mm"] == 0
    assert second["rotation_deg"] < 1.0, second
    assert second["position_pct_baseline"] < 2.0, second
    assert max(first["focal_pct"], second["focal_pct"]) < 2.0, (first, second)
    entries = json.load(open(os.path.join(out, "calibrated.json")))
    assert all(e["reprojection_px"] < 1.0 for e in entries) and entries[1]["name"] == "view2.avi"


def test_hands_alone_give_back_the_rig_up_to_the_hands_size():
    from core.calibration.hands import calibrate_from_hands, model_bone_lengths
    rng = np.random.default_rng(7)
    cameras, target = random_rig(rng, 3, (960, 720))
    tracks, bones = synthetic_tracks(rng, cameras, target, frames=90, noise_px=1.5, outliers=0.05)
    rig = calibrate_from_hands(tracks, [(c.K, None, c.image_size) for c in cameras], ["a", "b", "c"],
                               bone_lengths=bones)
    for row in compare(cameras, rig.cameras)[1:]:
        assert row["rotation_deg"] < 1.0, row
        assert row["position_pct_baseline"] < 4.0, row
    assert 0.02 < rig.dropped < 0.15                      # about the 5% outliers (and their frames' neighbours)
    mean_hand = model_bone_lengths()
    assert np.all((mean_hand > 0.06) & (mean_hand < 0.12)), mean_hand       # wrist to knuckles of an adult hand


def test_a_clip_without_the_board_is_named_exit_2(board_rig, tmp_path, capsys):
    _, paths = board_rig
    empty = str(tmp_path / "wall.avi")
    writer = cv2.VideoWriter(empty, cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    for k in range(4):
        writer.write(np.full((240, 320, 3), 40 * k + 60, np.uint8))
    writer.release()
    args = calibrate_arguments(str(tmp_path), [paths[0], empty])
    assert handcap(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"handcap calibrate: error: {empty}: the board") and "not found" in err
    assert not os.path.exists(tmp_path / "calibrated.json")


def test_the_printed_board_is_found_whole(tmp_path, capsys):
    path = str(tmp_path / "board.png")
    assert handcap(["calibrate", "--print-board", path]) == 0
    image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    spec = BoardSpec()
    pixels_per_square = image.shape[1] / (spec.squares_x + 2)                  # one square of margin each side
    assert abs(pixels_per_square - spec.square_m / 0.0254 * 300) < 1
    ids, _ = BoardFinder(spec).find(cv2.resize(image, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA))
    assert sorted(ids) == list(range((spec.squares_x - 1) * (spec.squares_y - 1)))
    assert BOARD.squares_x == 7


RUNNER = """
import contextlib, io, json, sys
from core.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    results.append([code, err.getvalue()])
print(json.dumps({"results": results, "heavy": [m for m in ("cv2", "torch") if m in sys.modules]}))
"""


def test_usage_errors_are_one_line_exit_2_before_opencv_loads(tmp_path):
    clip = tmp_path / "a.avi"
    clip.write_bytes(b"x")
    cases = [
        (["calibrate"], "give the clips of every camera (or --print-board OUT.png)"),
        (["calibrate", str(clip), str(clip)], "-o CAMERAS.json is required"),
        (["calibrate", str(clip), str(tmp_path / "b.avi"), "-o", "c.json"], f"{tmp_path / 'b.avi'}: no such file"),
        (["calibrate", str(clip), str(clip), "-o", "c.json", "--hands"], "--hands needs the cameras' intrinsics"),
        (["calibrate", str(clip), str(clip), "-o", "c.json", "--offsets", "1"], "--offsets: 1 value(s) for 2 clips"),
        (["calibrate", "--print-board", "b.png", "--board", "7", "5", "0.03", "0.04"], "--board: the marker side"),
    ]
    result = subprocess.run([sys.executable, "-c", RUNNER, json.dumps([a for a, _ in cases])], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    report = json.loads(result.stdout)
    assert report["heavy"] == []
    for (argv, expected), (code, err) in zip(cases, report["results"]):
        assert code == 2 and err.startswith("handcap calibrate: error: " + expected) and err.count("\n") == 1, (argv, err)
