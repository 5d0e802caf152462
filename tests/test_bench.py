"""The benchmark (``python -m bench``): a quick smoke run end to end, and its pure helpers."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from bench.__main__ import markdown
from bench.accuracy import match_hands, pck
from bench.common import Row, stat, value_text

from .conftest import REPO


@pytest.mark.skipif(importlib.util.find_spec("bpy") is None, reason="needs the bpy module")
def test_quick_run_writes_the_table(tmp_path):
    """``python -m bench --quick --sections blender,gpu`` prints the table and writes bench.md and
    bench.json with the date, machine, command and each measurement's median and spread."""
    out = tmp_path / "results"
    result = subprocess.run([sys.executable, "-m", "bench", "--quick", "--sections", "blender,gpu", "--out", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "bench.json").read_text())
    assert {"date", "command", "machine", "settings", "sections", "rows"} <= set(report)
    assert report["command"].startswith("python -m bench --quick")
    assert {"cpu", "cores", "torch", "gpu"} <= set(report["machine"])
    blender = report["sections"]["blender"]
    for key in ("rig_build_ms", "keying_ms", "import_ms", "fbx_export_ms", "glb_export_ms"):
        assert {"median", "min", "max", "n"} <= set(blender[key]) and blender[key]["median"] > 0, key
    assert blender["frames"] == 200
    gpu = report["sections"]["gpu"]
    assert "skipped" in gpu or "models" in gpu
    table = (out / "bench.md").read_text()
    assert "| section | measurement | value (median) | spread |" in table
    assert "keyframes for 200 frames" in table and table in result.stdout
    assert not list(out.glob("*.tmp*"))                          # written atomically


def test_stat_and_cells():
    s = stat([3.0, 1.0, 2.0], "ms")
    assert (s["median"], s["min"], s["max"], s["n"]) == (2.0, 1.0, 3.0, 3)
    assert value_text(Row("x", "y", s)) == ("2.00 ms", "1.00-3.00 (n=3)")
    assert value_text(Row("x", "y", 0.5, "px")) == ("0.5 px", "")
    report = {"machine": {"cpu": "C", "cores": 2, "gpu": None, "python": "3", "torch": "t"}, "date": "D",
              "command": "python -m bench", "settings": {"warmup": 1, "repeat": 3, "quick": False}}
    text = markdown(report, [Row("engine", "a|b", s, reference="r", ratio=0.25)])
    assert "| engine | a/b | 2.00 ms | 1.00-3.00 (n=3) | r | 0.25 |" in text


def test_engine_rows_put_per_frame_beside_the_temporal_solve():
    from bench.engine import PER_FRAME, rows
    stages = {name: stat([1.0], "ms") for name in ("decode", "smooth")}
    model = lambda fps: {"fps": stat([fps], "frames/s"), "stages_ms_per_frame": stages, "fit_error_px": None}
    result = {"video": "640x480", "models": {"trunk": model(20.0), f"trunk, {PER_FRAME}": model(25.0)},
              "mediapipe": {"fps": stat([40.0], "frames/s")}}
    ends = {r.measurement: r for r in rows(result) if "end to end" in r.measurement}
    assert ends["trunk: end to end, 640x480, CPU"].ratio == 0.5                      # beside MediaPipe
    per_frame = ends[f"trunk, {PER_FRAME}: end to end, 640x480, CPU"]
    assert per_frame.reference == "with the temporal solve 20.0 frames/s" and per_frame.ratio == 1.25


def test_agreement_matching_and_pck():
    hand = np.stack([np.linspace(0, 100, 21), np.linspace(0, 50, 21)], axis=1)
    other = hand + 300
    # the engine's hands in the other order, one far off: matched by box, not by list position
    pairs = match_hands([hand, other], [np.array([290, 290, 410, 360.0]), np.array([0, 0, 100, 50.0])])
    assert sorted(pairs) == [(0, 1), (1, 0)]
    assert match_hands([hand], [np.array([500, 500, 600, 600.0])]) == []
    scores = pck([hand, hand], [hand + [5.0, 0.0], hand + [15.0, 0.0]])        # hand size 100 px
    assert scores["pck_0.1"] == pytest.approx(0.5) and scores["pck_0.2"] == pytest.approx(1.0)


def test_live_rows_show_the_addon_rate_beside_the_engines():
    from bench.live import rows
    result = {"video": "640x480", "settings": {}, "addon_follow": {
        "engine_fps": 30.0, "update_fps": 27.0, "records_per_update": 1.1, "tick_ms": stat([0.6], "ms")}}
    follow = [r for r in rows(result) if "updates/s" in r.measurement]
    assert len(follow) == 1 and abs(follow[0].ratio - 0.9) < 1e-9
    assert "30.0/s" in follow[0].reference


def test_live_truth_rows_and_scores():
    from bench.live_truth import rows
    from training.live_clip_eval import score
    rng = np.random.default_rng(0)
    truth = rng.normal(scale=0.05, size=(4, 21, 3))
    angle = 0.3                                                  # the same hands turned, scaled and moved: PA 0
    turn = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    found = {f: 1.2 * truth[f] @ turn.T + [0.1, 0, 0.5] for f in range(4)}
    scored = score(found, truth, [0, 2])
    assert scored["frames"] == 2 and scored["pa_mpjpe_mm"] < 1e-6 and scored["rr_mpjpe_mm"] > 1.0
    entry = lambda pa: {"found": 10, "frames": 9, "pa_mpjpe_mm": pa, "rr_mpjpe_mm": 20.0}
    table = rows({"frames": 12, "hold": 3, "live": entry(9.0), "estimate": entry(8.0)})
    assert table[0].ratio == 9.0 / 8.0 and "8.000 mm" in table[0].reference
