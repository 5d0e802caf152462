"""Hand regions (issue #8): boxes typed in the panel, passed to the engine as --box instead of detection."""

from __future__ import annotations

import json
import math
import os
import sys
from types import SimpleNamespace

import pytest

from blender_addon import engine, regions
from core.cli import parse_box
from tests.test_blender_engine import RecordingLayout, addon, fake  # noqa: F401  (fixtures)
from tests.test_blender_support import scene_fingerprint

# --- formats and checks (no bpy) ---------------------------------------------------------


def test_each_region_becomes_one_box_option_after_the_others():
    boxes = ((10, 20, 200, 220), (300.5, 40, 620, 400.25))
    assert engine.EstimateOptions(boxes=boxes).arguments() == [
        "--box", "10,20,200,220", "--box", "300.5,40,620,400.25"]
    assert engine.EstimateOptions(hand="left", boxes=boxes[:1]).arguments() == [
        "--hand", "left", "--box", "10,20,200,220"]
    assert engine.EstimateOptions(boxes=()).arguments() == []
    command = engine.estimate_command("py", "photo.png", "out", engine.EstimateOptions(boxes=boxes))
    assert command[-4:] == ["--box", "10,20,200,220", "--box", "300.5,40,620,400.25"]


@pytest.mark.parametrize("box", [(10, 20, 200, 220), (0.5, 1.25, 1919.75, 1080), (123456.5, 0, 123457, 1)])
def test_the_engine_reads_back_what_the_addon_writes(box):
    assert parse_box(regions.format_box(box)) == tuple(float(v) for v in box)


def test_good_regions_pass_as_floats():
    assert regions.check_boxes([(0, 0, 640, 480), (10, 20, 30.5, 40)], (640, 480)) == [
        (0.0, 0.0, 640.0, 480.0), (10.0, 20.0, 30.5, 40.0)]
    assert regions.check_boxes([(0, 0, 5000, 5000)]) == [(0.0, 0.0, 5000.0, 5000.0)]      # size unknown
    assert regions.check_boxes([(0, 0, 5000, 5000)], (0, 0)) == [(0.0, 0.0, 5000.0, 5000.0)]
    assert regions.check_boxes([]) == []


@pytest.mark.parametrize("boxes,message", [
    ([(10, 20, 200, 220), (300, 40, 200, 140)], "region 2 (300,40,200,140): x1 must be greater than x0"),
    ([(10, 20, 10, 220)], "region 1 (10,20,10,220): x1 must be greater than x0"),
    ([(10, 220, 200, 20)], "region 1 (10,220,200,20): y1 must be greater than y0"),
    ([(0, 0, 641, 480)], "region 1 (0,0,641,480): outside the 640 x 480 image (x1 > 640)"),
    ([(-1, 0, 100, 481)], "region 1 (-1,0,100,481): outside the 640 x 480 image (x0 < 0, y1 > 480)"),
    ([(0, 0, math.nan, 10)], "region 1 (0,0,nan,10): coordinates must be finite numbers"),
    ([(0, 0, 10)], "region 1: expected four numbers x0, y0, x1, y1, got (0, 0, 10)"),
    ([("a", 0, 10, 10)], "region 1: expected four numbers"),
    ([], regions.NO_REGIONS),
])
def test_bad_regions_name_the_region_and_the_problem(boxes, message):
    with pytest.raises(regions.RegionError) as error:
        regions.check_boxes(boxes, (640, 480), required=True)
    assert str(error.value).startswith(message)


def test_image_editor_view_to_pixels():
    # Blender's image space: u right, v up, 0..1 across the image; pixels: y down from the top
    assert regions.view_box((0.25, 0.5), (0.5, 0.75), (640, 480)) == (160, 120, 320, 240)
    assert regions.view_box((-0.3, -0.2), (1.4, 1.1), (640, 480)) == (0, 0, 640, 480)     # zoomed out: clipped
    assert regions.view_box((0.2501, 0.4999), (0.4999, 0.7501), (640, 480)) == (160, 119, 320, 241)  # outward
    with pytest.raises(regions.RegionError, match="shows none of the image"):
        regions.view_box((1.2, 0.0), (1.5, 1.0), (640, 480))
    with pytest.raises(regions.RegionError, match="no pixels"):
        regions.view_box((0, 0), (1, 1), (0, 0))


# --- the panel's regions and Estimate Hand (bpy) -------------------------------------------


def _boxes_passed(out):
    with open(os.path.join(out, "argv.json")) as f:
        argv = json.load(f)
    return [argv[i + 1] for i, a in enumerate(argv) if a == "--box"]


def _settings_for(bpy, fake, monkeypatch):
    """The scene's handcap settings pointed at the fake photo and output folder (fake engine)."""
    photo, out = fake
    monkeypatch.setenv(engine.ENV_PYTHON, sys.executable)
    settings = bpy.context.scene.handcap
    settings.input_path, settings.output_dir = photo, out
    return settings, out


def test_regions_added_by_the_operators_reach_the_engine(addon, fake, monkeypatch):
    bpy = addon
    settings, out = _settings_for(bpy, fake, monkeypatch)
    assert not settings.use_regions
    assert bpy.ops.handcap.region_add() == {"FINISHED"}                  # no corners: the whole photo
    assert [r.box() for r in settings.regions] == [(0, 0, 640, 480)] and settings.use_regions
    assert bpy.ops.handcap.region_add(x0=10, y0=20, x1=200, y1=220) == {"FINISHED"}
    assert bpy.ops.handcap.region_add(x0=300, y0=40, x1=620, y1=400) == {"FINISHED"}
    assert bpy.ops.handcap.region_remove(index=0) == {"FINISHED"}
    assert [r.box() for r in settings.regions] == [(10, 20, 200, 220), (300, 40, 620, 400)]
    assert bpy.ops.handcap.estimate() == {"FINISHED"}
    assert _boxes_passed(out) == ["10,20,200,220", "300,40,620,400"]
    assert "photo" in bpy.data.collections


def test_regions_switched_off_are_not_passed(addon, fake, monkeypatch):
    bpy = addon
    settings, out = _settings_for(bpy, fake, monkeypatch)
    bpy.ops.handcap.region_add(x0=10, y0=20, x1=200, y1=220)
    settings.use_regions = False                                         # kept, but detection runs
    assert bpy.ops.handcap.estimate() == {"FINISHED"}
    assert _boxes_passed(out) == []
    settings.use_regions = True
    assert bpy.ops.handcap.region_remove(index=0) == {"FINISHED"}
    assert len(settings.regions) == 0 and not settings.use_regions      # the last one gone: detection
    with pytest.raises(RuntimeError, match="there is no region 1"):
        bpy.ops.handcap.region_remove(index=0)


@pytest.mark.parametrize("box,message", [
    ((300, 40, 200, 140), "region 2 (300,40,200,140): x1 must be greater than x0"),
    ((300, 40, 400, 40), "region 2 (300,40,400,40): y1 must be greater than y0"),
    ((300, 40, 641, 140), "region 2 (300,40,641,140): outside the 640 x 480 image (x1 > 640)"),
    (None, "no hand regions: add one"),
])
def test_a_bad_region_is_reported_and_nothing_is_launched(addon, fake, monkeypatch, box, message):
    bpy = addon
    settings, out = _settings_for(bpy, fake, monkeypatch)
    if box is None:
        settings.use_regions = True
    else:
        bpy.ops.handcap.region_add(x0=10, y0=20, x1=200, y1=220)
        bpy.ops.handcap.region_add(x0=box[0], y0=box[1], x1=box[2], y1=box[3])
    before = scene_fingerprint()                                          # no temporary image left
    with pytest.raises(RuntimeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        bpy.ops.handcap.estimate()
    assert not os.path.exists(os.path.join(out, "argv.json"))           # the engine never started
    assert scene_fingerprint() == before and not bpy.context.window_manager.handcap.running


def test_the_image_size_comes_from_a_video_too(addon, tmp_path):
    import cv2
    import numpy as np
    from blender_addon.ops_regions import source_size
    path = str(tmp_path / "clip.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    for _ in range(3):
        writer.write(np.zeros((240, 320, 3), np.uint8))
    writer.release()
    before = scene_fingerprint()
    assert source_size(path) == (320, 240)
    assert source_size(str(tmp_path / "missing.mp4")) is None
    assert scene_fingerprint() == before


def test_region_add_without_a_photo_and_from_view_without_an_image_editor(addon):
    bpy = addon
    assert bpy.ops.handcap.region_add() == {"FINISHED"}
    settings = bpy.context.scene.handcap
    assert [r.box() for r in settings.regions] == [(0, 0, 0, 0)] and settings.use_regions
    assert not bpy.ops.handcap.region_from_view.poll()                  # no Image Editor (no window)


@pytest.mark.parametrize("use", [False, True])
def test_panels_draw_the_regions(addon, use):
    from blender_addon.panel import HANDCAP_PT_estimate, HANDCAP_PT_regions_image
    bpy = addon
    settings = bpy.context.scene.handcap
    log = []
    HANDCAP_PT_estimate.draw(SimpleNamespace(layout=RecordingLayout(log)), bpy.context)
    assert ("prop", "use_regions") in log and ("label", "No regions: the engine detects the hands") in log
    bpy.ops.handcap.region_add(x0=1, y0=2, x1=3, y1=4)
    bpy.ops.handcap.region_add(x0=5, y0=6, x1=7, y1=8)
    settings.use_regions = use
    for panel in (HANDCAP_PT_estimate, HANDCAP_PT_regions_image):
        log = []
        panel.draw(SimpleNamespace(layout=RecordingLayout(log)), bpy.context)
        assert [e for e in log if e[0] == "prop" and e[1] in ("x0", "y0", "x1", "y1")] == \
            2 * [("prop", "x0"), ("prop", "y0"), ("prop", "x1"), ("prop", "y1")]
        assert log.count(("operator", "handcap.region_remove")) == 2
        assert ("operator", "handcap.region_add") in log and ("operator", "handcap.region_from_view") in log
        assert (("label", "Boxed hands are right hands unless Hand is Left") in log) == use
