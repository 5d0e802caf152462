"""In a real Blender (background): Estimate Hand through the installed extension and its engine,
each input in a fresh default scene (the 2 m cube, camera and light a user starts with).

    blender -b -P blender_estimate.py -- OUT_DIR INPUT SIDES [INPUT SIDES ...]

SIDES is the expected hands, e.g. ``left,right``. An INPUT that is a folder is several calibrated
views (its view*.png and cameras.json), estimated in the panel's Multi-View mode. Every input must give exactly those rigs; a
video's rigs must be keyed on every frame of the clip (its length read by Blender itself). Each
result is saved as OUT_DIR/<name>_<ext>.blend for the GUI stage; OUT_DIR/estimate.json sums it up."""

import os
import sys
import time

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from blender_checks import expect, finish, hand_rigs, keyed_frames, script_args, write_result  # noqa: E402

VIDEO = (".mp4", ".mov", ".avi", ".mkv")
failures, summary = [], {}
out_dir, *pairs = script_args()
def estimate_views(folder: str):
    """Estimate Hand in Multi-View: the panel's views list and cameras file (a folder's view*.png and
    cameras.json), as a user fills them; the engine's multi-view fit builds one camera per view."""
    settings = bpy.context.scene.handcap
    settings.input_mode = "views"
    settings.views.clear()
    for name in sorted(n for n in os.listdir(folder) if n.startswith("view") and n.endswith(".png")):
        settings.views.add().path = os.path.join(folder, name)
    settings.cameras_path = os.path.join(folder, "cameras.json")
    return bpy.ops.handcap.estimate(), len(settings.views)


for path, sides in zip(pairs[::2], pairs[1::2]):
    name = os.path.basename(path)
    bpy.ops.wm.read_homefile()
    expect("Cube" in bpy.data.objects, f"{name}: the default scene with its cube", failures)
    start = time.perf_counter()
    if os.path.isdir(path):
        outcome, count = estimate_views(path)
        cameras = [o for o in bpy.context.scene.objects if o.type == "CAMERA" and "handcap_view" in o]
        expect(len(cameras) == count, f"{name}: a camera per view ({len(cameras)} for {count} views)", failures)
        for camera in cameras:
            expect(any(b.image for b in camera.data.background_images),
                   f"{name}: {camera.name} shows its own photo", failures)
    else:
        outcome = bpy.ops.handcap.estimate(input_path=path)
    seconds = time.perf_counter() - start
    rigs = hand_rigs()
    found = sorted(side for side, objs in rigs.items() for _ in objs)
    expect(outcome == {"FINISHED"}, f"{name}: Estimate Hand finished ({seconds:.1f} s)", failures)
    expect(found == sorted(sides.split(",")), f"{name}: rigs {found}, expected {sorted(sides.split(','))}", failures)
    entry = {"seconds": round(seconds, 1), "rigs": found, "objects": sorted(o.name for o in bpy.context.scene.objects)}
    if path.lower().endswith(VIDEO):
        frames = bpy.data.movieclips.load(path).frame_duration
        every = set(range(1, frames + 1))
        for side, objs in rigs.items():
            for obj in objs:
                keyed = keyed_frames(obj)
                expect(every <= keyed, f"{name}: {obj.name} ({side}) keyed on every one of the {frames} frames "
                                       f"({len(every & keyed)} keyed)", failures)
        entry["frames"] = frames
    camera = bpy.context.scene.camera
    expect(camera is not None and camera.name != "Camera", f"{name}: the capture's camera is the scene camera", failures)
    if camera is not None:
        backgrounds = [b for b in camera.data.background_images if (b.image or b.clip)]
        expect(bool(backgrounds) and camera.data.show_background_images,
               f"{name}: the camera shows the source behind the hands", failures)
    blend = os.path.join(out_dir, name.replace(".", "_") + ".blend")
    bpy.ops.wm.save_as_mainfile(filepath=blend)
    entry["blend"] = blend
    summary[name] = entry
write_result(os.path.join(out_dir, "estimate.json"), summary)
finish(failures)
