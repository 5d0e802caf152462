"""In a real Blender with a window (under Xvfb): what a user sees, as screenshots, and Live Capture.

    blender FILE.blend -P blender_gui.py -- shots OUT_PREFIX
        the sidebar's Hand Capture tab with the view through the capture's camera, and the
        hands from the side: OUT_PREFIX_camera.png, OUT_PREFIX_side.png
    blender -P blender_gui.py -- live CLIP OUT_PREFIX
        Start Live with the panel's settings as they come (only the source set to CLIP and Record
        on), to the end of the clip: OUT_PREFIX_live.png mid-stream, OUT_PREFIX_live.json
    blender -P blender_gui.py -- views FOLDER OUT_PREFIX
        imports FOLDER/views.npz (three cameras, tests/user_path/make_media.py) into the default scene, fills
        the panel's Multi-View with its photos and FOLDER/cameras.json, and looks through each camera with
        the panel's Capture Cameras: OUT_PREFIX_view{c}.png

Screenshots are taken of the X screen ($DISPLAY) with xwd and ImageMagick (Blender's own
screenshot operator gives a black image under Xvfb)."""

import os
import subprocess
import sys
import time

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from blender_checks import expect, finish, hand_rigs, keyed_frames, script_args, write_result  # noqa: E402

failures = []
mode, *rest = script_args()


def screenshot(path: str) -> None:
    shot = subprocess.run(f"xwd -root -silent -display {os.environ['DISPLAY']} | convert xwd:- '{path}'",
                          shell=True, capture_output=True, text=True)
    expect(shot.returncode == 0 and os.path.isfile(path), f"screenshot {os.path.basename(path)}", failures)


def view_3d():
    """(window, area, region, space) of the largest 3D view."""
    window = bpy.context.window_manager.windows[0]
    areas = [a for a in window.screen.areas if a.type == "VIEW_3D"]
    area = max(areas, key=lambda a: a.width * a.height)
    region = next(r for r in area.regions if r.type == "WINDOW")
    return window, area, region, area.spaces.active


def open_hand_capture_tab():
    """Show the sidebar and, once it has drawn (its tabs exist only then), its Hand Capture tab."""
    subprocess.run(["xdotool", "key", "Escape"], capture_output=True)      # the splash screen, if any
    window, area, region, space = view_3d()
    space.show_region_ui = True
    area.tag_redraw()
    yield 1.0
    sidebar = next(r for r in area.regions if r.type == "UI")
    sidebar.active_panel_category = "Hand Capture"
    area.tag_redraw()
    yield 1.0


def frame_hands(window, area, region) -> None:
    """Select the hand rigs and their meshes and frame them in the 3D view."""
    for obj in bpy.context.scene.objects:
        obj.select_set(obj.type in ("ARMATURE", "MESH") and obj.name != "Cube")
    with bpy.context.temp_override(window=window, area=area, region=region):
        bpy.ops.view3d.view_selected()
    area.tag_redraw()


def shots(prefix: str):
    yield from open_hand_capture_tab()
    window, area, region, space = view_3d()
    space.region_3d.view_perspective = "CAMERA"
    with bpy.context.temp_override(window=window, area=area, region=region):
        bpy.ops.view3d.view_center_camera()
    area.tag_redraw()
    yield 3.0
    screenshot(prefix + "_camera.png")
    space.region_3d.view_perspective = "PERSP"
    with bpy.context.temp_override(window=window, area=area, region=region):
        bpy.ops.view3d.view_axis(type="RIGHT")
    frame_hands(window, area, region)
    yield 2.0
    screenshot(prefix + "_side.png")


def live(clip: str, prefix: str):
    yield from open_hand_capture_tab()
    settings = bpy.context.scene.handcap
    settings.live_source = clip
    settings.live_record = True
    window, area, region, space = view_3d()
    with bpy.context.temp_override(window=window, area=area, region=region):
        outcome = bpy.ops.handcap.live_start("INVOKE_DEFAULT")
    expect(outcome == {"RUNNING_MODAL"}, "Start Live with the panel's default settings started", failures)
    state = bpy.context.window_manager.handcap
    start, shot = time.time(), False
    while state.live_running and time.time() - start < 600:
        if not shot and state.live_frames >= 2:
            frame_hands(window, area, region)
            yield 0.5
            screenshot(prefix + "_live.png")
            shot = True
        yield 0.25
    rigs = hand_rigs()
    found = sorted(side for side, objs in rigs.items() for _ in objs)
    keyed = {obj.name: len(keyed_frames(obj)) for objs in rigs.values() for obj in objs}
    expect(not state.live_running, "the live session ended with the clip", failures)
    expect(found == ["left", "right"], f"live rigs {found}", failures)
    expect(bool(keyed) and all(n > 0 for n in keyed.values()), f"recorded takes keyed: {keyed}", failures)
    expect(state.live_frames > 0, f"{state.live_frames} live frames at {state.live_fps:.1f} frames/s, "
                                  f"{state.live_latency_ms:.0f} ms", failures)
    write_result(prefix + "_live.json", {"rigs": found, "keyed_frames": keyed, "frames": state.live_frames,
                                         "fps": round(state.live_fps, 2), "latency_ms": round(state.live_latency_ms, 1),
                                         "seconds": round(time.time() - start, 1)})


def views(folder: str, prefix: str):
    yield from open_hand_capture_tab()
    bpy.ops.handcap.import_capture(filepath=os.path.join(folder, "views.npz"))
    settings = bpy.context.scene.handcap
    settings.input_mode = "views"
    for name in ("left_phone.png", "right_phone.png", "top_cam.png"):
        settings.views.add().path = os.path.join(folder, name)
    settings.cameras_path = os.path.join(folder, "cameras.json")
    cameras = sorted((o for o in bpy.context.scene.objects if o.type == "CAMERA" and "handcap_view" in o),
                     key=lambda o: o["handcap_view"])
    expect([o.name for o in cameras] == ["left_phone camera", "right_phone camera", "top_cam camera"],
           f"a camera per view: {[o.name for o in cameras]}", failures)
    window, area, region, space = view_3d()
    sizes = {}
    for c, camera in enumerate(cameras):
        image = camera.data.background_images[0].image if len(camera.data.background_images) else None
        expect(image is not None and min(image.size) > 0, f"{camera.name} shows its photo", failures)
        with bpy.context.temp_override(window=window, area=area, region=region):
            bpy.ops.handcap.look_through(camera=camera.name)
            bpy.ops.view3d.view_center_camera()
        render = bpy.context.scene.render
        sizes[camera.name] = [render.resolution_x, render.resolution_y]
        expect(image is not None and sizes[camera.name] == list(image.size), f"{camera.name}: render size "
               f"{sizes[camera.name]} is its photo's", failures)
        area.tag_redraw()
        yield 2.5
        screenshot(f"{prefix}_view{c}.png")
    write_result(prefix + "_views.json", {"cameras": sizes})


def drive(steps):
    """A timer that runs the generator ``steps`` (each yield: seconds until the next step), then exits."""
    def tick():
        try:
            return next(steps)
        except StopIteration:
            finish(failures)
        except Exception as e:          # a broken check is a failed stage, never a hung Blender
            expect(False, f"{type(e).__name__}: {e}", failures)
            finish(failures)
    return tick


steps = {"shots": shots, "live": live, "views": views}[mode](*rest)
bpy.app.timers.register(drive(steps), first_interval=4.0)
