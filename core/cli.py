"""The `handcap` command line: demo, estimate, live, self-test, blend, retarget, calibrate, addon-zip (also reachable as `python -m core`).

One rule for every command (docs/command_line.md, "Errors and exit codes"): an error is one line on stderr
naming the input and the problem; the exit code is 0 when every input gave a result, 1 when any
failed, 2 for a usage error, 3 when everything was read but some input had no hand
(``blender_addon.exit_codes``). Arguments and output folders are checked before torch or any
model loads, so a mistake is reported at once. Third-party log lines and warnings stay off the
terminal unless ``--verbose``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import traceback

from blender_addon import exit_codes
from blender_addon.output_files import FolderError, check_writable_folder, remove_if_empty
from blender_addon.quiet import quiet_third_party

from .boxes import BOX_HELP, join_box_values, parse_box  # noqa: F401 (parse_box: the add-on's tests read boxes back)

DEFAULT_DEMO_DIR = os.path.join("out", "demo")
DEMO_PHOTO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "demo_hand.jpg")
SHARED_PHOTOS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "real_images")


class UsageError(ValueError):
    """A mistake on the command line found after parsing (a path that does not exist, a folder that
    cannot be written); reported as one line, exit code 2."""


def usage_error(command: str, message: str) -> int:
    print(f"handcap {command}: error: {message}", file=sys.stderr, flush=True)
    return exit_codes.USAGE


# ------------------------------------------------------------------------------------ demo

def cmd_demo(args) -> int:
    """The main job on a bundled example: photo -> capture file + overlay -> rigged .blend.

    The bundled photo is a render of the open hand model made by training.synth (held-out style);
    real photos in ../shared/real_images/ are added when that folder exists."""
    out = os.path.abspath(args.out)
    try:
        created = check_writable_folder(out)
    except FolderError as e:
        return usage_error("demo", str(e))
    from .engine.network import EngineError
    from .engine.pipeline import EngineOptions
    from .engine.progress import Progress
    from .engine.run import Estimator, VideoOptions, expand_inputs
    from .hand_model.picture import make_picture

    inputs = [DEMO_PHOTO]
    for folder in ("freihand_eval", "in_the_wild"):
        if os.path.isdir(os.path.join(SHARED_PHOTOS, folder)):
            inputs += expand_inputs([os.path.join(SHARED_PHOTOS, folder)])
    print(f"handcap demo: estimating hands in {len(inputs)} photo(s) -> {out}")
    try:
        estimator = Estimator(EngineOptions(), VideoOptions(), out, overlay=True, detection_process=False,
                              progress=Progress("text", "handcap demo"), verbose=args.verbose)
    except EngineError as e:
        if created:
            remove_if_empty(out)
        return usage_error("demo", str(e))
    try:
        outputs, failed = estimator.run(inputs)
    finally:
        estimator.close()
    hands = sum(estimator.hands.values())
    print(f"  hand model picture : {make_picture(os.path.join(out, 'hand_model.png'))}")
    print(f"  capture files      : {len(outputs)} in {out} (*.npz), overlays *_overlay.png; "
          f"{hands} hand(s) in {len(outputs) - len(estimator.no_hand)} photo(s)"
          + (f", {failed} photo(s) failed" if failed else ""))
    if estimator.no_hand:
        names = ", ".join(os.path.basename(p) for p in estimator.no_hand)
        print(f"  no hand found in   : {len(estimator.no_hand)} photo(s): {names}")
    code = exit_codes.exit_code(failed, len(estimator.no_hand), len(inputs))
    capture = outputs[0] if outputs else None
    if capture is None:
        return exit_codes.FAILED
    print(f"  bundled photo      : {DEMO_PHOTO} ({estimator.hands[capture]} hand(s))\n  its capture        : {capture}\n"
          f"  its overlay        : {os.path.splitext(capture)[0]}_overlay.png")
    try:
        from blender_addon.convert import convert_capture
    except ImportError as e:
        print(f"  .blend             : skipped, Blender's Python module is not installed ({e});"
              " install with pip install -e '.[blender]'")
        return exit_codes.FAILED
    blend_path = os.path.join(out, "demo_hand.blend")
    convert_capture(capture, blend_path)
    print(f"  Blender scene      : {blend_path} (rigged hand posed like the photo, camera with the photo behind)")
    return code


# -------------------------------------------------------------------------------- estimate

def check_estimate_arguments(args) -> bool:
    """Everything about the command line that can be checked without torch; UsageError otherwise.
    The output folder comes last (it may be created); returns whether it was created here."""
    from .engine.shipped import EngineError, check_weights
    if args.hand_model != "open":
        if not os.path.exists(args.hand_model):
            raise UsageError(f"--hand-model {args.hand_model}: no such file (use 'open', or the path of a MANO_RIGHT.pkl)")
        raise UsageError(f"--hand-model {args.hand_model}: the shipped networks are trained on the open hand "
                         "model; a network trained on MANO (training.train with network.hand_model set to "
                         "the MANO file) is needed for MANO output")
    try:
        check_weights(args.weights)
    except EngineError as e:
        raise UsageError(str(e)) from None
    if args.K is not None and not os.path.isfile(args.K):
        raise UsageError(f"--K {args.K}: no such file")
    if args.frame_end >= 0 and args.frame_end < args.frame_start:
        raise UsageError(f"--frame-end {args.frame_end} is before --frame-start {args.frame_start}")
    if args.views is not None or args.cameras is not None or args.offsets is not None:
        check_views_arguments(args)
    elif not args.inputs:
        raise UsageError("no INPUT given: photos, videos or folders of them (or --views V1 V2 ... --cameras FILE)")
    check_ray_arguments(args)
    try:
        return check_writable_folder(args.output)
    except FolderError as e:
        raise UsageError(f"-o {e}") from None


def check_views_arguments(args) -> None:
    """--views, --cameras and --offsets (several calibrated views of one instant), checked before torch
    loads: the cameras file is read here, so a file that does not describe one camera per view fails at once."""
    from .multiview.cameras import CamerasError, load_cameras
    if args.views is None:
        raise UsageError(f"--{'cameras' if args.cameras is not None else 'offsets'} goes with --views V1 V2 ... "
                         "(several views of one scene)")
    if args.inputs:
        raise UsageError(f"give either INPUTs or --views, not both ({args.inputs[0]} is an INPUT)")
    if args.cameras is None:
        raise UsageError("--views needs --cameras CAMERAS.json (one camera per view, in the same order)")
    for given, name in ((args.box, "--box"), (args.ray is not None, "--ray"), (args.K, "--K"), (args.focal, "--focal")):
        if given:
            raise UsageError(f"{name} does not go with --views (the cameras file gives each view's camera)"
                             if name in ("--K", "--focal") else f"{name} does not go with --views (not yet)")
    if args.offsets is not None and "auto" in args.offsets and args.offsets != ["auto"]:
        raise UsageError("--offsets: give 'auto' alone, or one number per view")
    if args.offsets is not None and args.offsets != ["auto"] and len(args.offsets) != len(args.views):
        raise UsageError(f"--offsets gives {len(args.offsets)} numbers for {len(args.views)} views (one per view)")
    try:
        load_cameras(args.cameras, views=len(args.views))
    except CamerasError as e:
        raise UsageError(f"--cameras {e}") from None


RAY_INSTALL = "pip install -e '.[ray]' (or pip install 'ray==2.60.0')"


def check_ray_arguments(args) -> None:
    """--ray and its options, checked before anything loads; UsageError otherwise."""
    ray_only = [f"--{name.replace('_', '-')}" for name in ("workers", "cpus_per_task", "gpus_per_task")
                if getattr(args, name) is not None]
    if args.ray is None:
        if ray_only:
            raise UsageError(f"{ray_only[0]} is an option of --ray (add --ray to run on a Ray cluster)")
        return
    import importlib.util
    if importlib.util.find_spec("ray") is None:
        raise UsageError(f"--ray needs the ray package, which is not installed: {RAY_INSTALL}")
    if args.ray and os.path.exists(args.ray):
        raise UsageError(f"--ray {args.ray}: that is a file or folder, not a Ray address; put the inputs before "
                         "--ray, or write --ray=ADDRESS")
    if args.device == "cuda" and not args.gpus_per_task:
        raise UsageError("--device cuda with --ray needs --gpus-per-task (the GPU share of each worker, e.g. 1 or 0.5)")


def cmd_estimate(args) -> int:
    """Photos/videos/folders -> capture files (and overlays); the exit code follows the rule in
    docs/command_line.md.

    Missing, empty and unsupported inputs are reported first, before torch and the engine load
    (seconds), and the others go on; with no input left the engine never loads."""
    from .engine.inputs import split_inputs
    from .engine.progress import Progress
    progress = Progress(args.progress)
    try:
        created = check_estimate_arguments(args)
    except UsageError as e:
        progress.error(str(e))
        return exit_codes.USAGE
    try:
        if args.views is not None:
            return _estimate_views(args, progress)
        files, errors = split_inputs(args.inputs)
        for error in errors:
            progress.error(str(error))
        if not files:
            if not errors:
                progress.error("no photos or videos in the inputs given")
            return _estimate_summary(args, progress, [], max(1, len(errors)), [], {})
        return _estimate(args, files, len(errors), progress)
    finally:
        if created:
            remove_if_empty(os.path.abspath(args.output))     # a folder made for outputs that never came


FIT_STEPS = 4        # core.engine.fitting.FIT_STEPS (not imported here: it would load torch before --help)
FIT_STEPS_HELP = "at most this many Levenberg-Marquardt steps of the fit (default: %(default)s)"


def engine_settings(args) -> tuple[dict, dict]:
    """The fields of EngineOptions and of VideoOptions the command line sets (plain values, no torch)."""
    engine = dict(device=args.device, weights=args.weights, hand=args.hand, max_hands=args.max_hands,
                  refine=not args.no_refine, fit_steps=args.fit_steps, boxes=tuple(args.box), threads=args.threads,
                  landmarks=args.landmarks)
    video = dict(smoothing=args.smoothing, frame_start=args.frame_start, frame_end=args.frame_end,
                 frame_step=args.frame_step)
    return engine, video


def _estimate(args, files: list, failed_before: int, progress) -> int:
    """Estimate ``files`` (inputs that passed the first check; ``failed_before`` did not)."""
    if args.ray is not None:
        return _estimate_on_ray(args, files, failed_before, progress)
    from .engine.network import EngineError
    from .engine.pipeline import EngineOptions
    from .engine.run import VIDEO_EXTENSIONS, Estimator, InputError, VideoOptions, expand_inputs
    try:
        engine, video = engine_settings(args)
        videos = any(f.lower().endswith(VIDEO_EXTENSIONS) for f in expand_inputs(files))
        estimator = Estimator(EngineOptions(**engine), VideoOptions(**video), args.output, overlay=args.overlay,
                              focal=args.focal, K_file=args.K, progress=progress, verbose=args.verbose,
                              detection_process=None if videos else False)   # no child process for photos
    except (EngineError, InputError, ValueError) as e:
        progress.error(str(e))
        return exit_codes.USAGE
    try:
        outputs, failed = estimator.run(files)
    finally:
        estimator.close()
    return _estimate_summary(args, progress, outputs, failed_before + failed, estimator.no_hand, estimator.hands)


def _estimate_views(args, progress) -> int:
    """``--views V1 V2 ... --cameras FILE``: photos of one instant -> one capture (core.multiview.run)."""
    from .engine.inputs import InputError, check_file
    try:
        kinds = [check_file(path) for path in args.views]
    except InputError as e:
        progress.error(str(e))
        return _estimate_summary(args, progress, [], 1, [], {})
    if len(set(kinds)) > 1:
        progress.error("--views: give all photos (one instant) or all videos (filmed together), not a mix")
        return exit_codes.USAGE
    if args.overlay and kinds[0] != "image":
        progress.error("--overlay with --views: photos only (not yet for videos)")
        return exit_codes.USAGE
    offsets = args.offsets or [0] * len(args.views)
    if kinds[0] == "image" and (offsets == ["auto"] or any(offsets)):
        progress.error("--offsets: photos are one instant (offsets are for videos)")
        return exit_codes.USAGE
    from .engine.inputs import VideoOptions
    from .engine.network import EngineError
    from .engine.pipeline import EngineOptions
    from .multiview.cameras import load_cameras
    from .multiview.run import ViewsEstimator
    engine, video = engine_settings(args)
    try:
        estimator = ViewsEstimator(EngineOptions(**engine), args.output, progress, overlay=args.overlay)
    except (EngineError, InputError, ValueError) as e:
        progress.error(str(e))
        return exit_codes.USAGE
    try:
        cameras = load_cameras(args.cameras, views=len(args.views))
        if offsets == ["auto"]:
            offsets = estimator.find_offsets(args.views, cameras)
        path = (estimator.run(args.views, cameras) if kinds[0] == "image"
                else estimator.run_videos(args.views, cameras, offsets, VideoOptions(**video)))
    except InputError as e:
        progress.error(str(e))
        return _estimate_summary(args, progress, [], 1, [], {})
    except Exception as e:       # a library failing on these views: one line
        progress.error(f"{args.views[0]} ...: cannot be processed ({type(e).__name__}: {e})")
        if args.verbose:
            traceback.print_exc()
        return _estimate_summary(args, progress, [], 1, [], {})
    finally:
        estimator.close()
    return _estimate_summary(args, progress, [path], 0, [] if estimator.hands else [args.views[0]], {path: estimator.hands})


def _estimate_on_ray(args, files: list, failed_before: int, progress) -> int:
    """The inputs spread over a Ray cluster (``core.scale_out``); the same outputs and summary."""
    from .engine.inputs import InputError, read_intrinsics_file
    from .scale_out import ray_batch
    from .scale_out.worker import Settings
    try:
        if args.K:
            read_intrinsics_file(args.K)                     # a bad --K fails here, once, as in a plain run
    except InputError as e:
        progress.error(str(e))
        return exit_codes.USAGE
    engine, video = engine_settings(args)
    settings = Settings(engine, video, os.path.abspath(args.output), overlay=args.overlay, focal=args.focal,
                        K_file=os.path.abspath(args.K) if args.K else None, verbose=args.verbose)
    resources = ray_batch.Resources(cpus=args.cpus_per_task or 1.0, gpus=args.gpus_per_task or 0.0,
                                    workers=args.workers or 0)
    try:
        result = ray_batch.run(settings, files, args.ray or None, resources, progress, args.verbose)
    except ConnectionError as e:
        progress.error(f"--ray {args.ray or '(this machine)'}: cannot reach the Ray cluster ({e})")
        return exit_codes.USAGE
    except ray_batch.ClusterTooSmall as e:
        progress.error(f"--ray: {e}")
        return exit_codes.USAGE
    return _estimate_summary(args, progress, result.outputs, failed_before + result.failed, result.no_hand,
                             result.hands)


def _estimate_summary(args, progress, outputs: list, failed: int, no_hand: list, hands: dict) -> int:
    """The last lines of ``handcap estimate`` (and its JSON 'done' line); returns the exit code."""
    summary = (f"handcap estimate: {len(outputs)} capture file(s) in {os.path.abspath(args.output)}, "
               f"{sum(hands.values())} hand(s)" + (f", {failed} input(s) failed" if failed else "")
               + (f", no hand found in {len(no_hand)}: {', '.join(os.path.basename(p) for p in no_hand)}" if no_hand else ""))
    progress.finish(outputs, failed, "\n".join([summary, *[f"  {path}" for path in outputs]]), no_hand)
    return exit_codes.exit_code(failed, len(no_hand), len(outputs) + failed)


# ------------------------------------------------------------------------------------ live

def cmd_live(args) -> int:
    """A camera or a video file -> one JSON record per frame on stdout (core.engine.live)."""
    from .engine.shipped import EngineError as WeightsError, check_weights
    try:
        check_weights(args.weights)
    except WeightsError as e:
        return usage_error("live", str(e))
    if args.K is not None and not os.path.isfile(args.K):
        return usage_error("live", f"--K {args.K}: no such file")
    from .engine.inputs import InputError, check_live_source
    try:
        check_live_source(args.source)               # a missing video file is reported before torch loads
    except InputError as e:
        return usage_error("live", str(e))
    from .engine.live import LiveOptions, LiveRunner, open_source, watch_stdin
    from .engine.network import EngineError
    from .engine.pipeline import EngineOptions
    try:
        open_source(args.source)[0].release()        # an unreadable file or camera is reported before models load
        runner = LiveRunner(EngineOptions(device=args.device, weights=args.weights, hand=args.hand,
                                          max_hands=args.max_hands, refine=not args.no_refine,
                                          fit_steps=args.fit_steps, boxes=tuple(args.box), threads=args.threads,
                                          landmarks=args.landmarks))
    except (EngineError, InputError, ValueError) as e:
        return usage_error("live", str(e))
    stop = threading.Event()
    watch_stdin(stop)
    try:
        frames = runner.run(LiveOptions(args.source, args.max_frames, args.focal, args.K, args.rig,
                                        args.width, args.height, args.as_camera), sys.stdout, stop)
    except InputError as e:
        print(f"handcap live: error: {e}", file=sys.stderr, flush=True)
        return exit_codes.FAILED
    finally:
        runner.close()
    return exit_codes.OK if frames else exit_codes.FAILED


def cmd_self_test(args) -> int:
    """Versions, CPU/GPU and one estimate on the bundled photo; exit 0 when all is well, 1 otherwise."""
    import json
    from .self_test import report_text, self_test
    report = self_test(args.device, estimate=not args.no_estimate)
    print(json.dumps(report) if args.json else report_text(report), flush=True)
    return exit_codes.OK if report["ok"] else exit_codes.FAILED


# ------------------------------------------------------------------------------- blend, zip

def report_missing(command: str, missing: list, created_folder: str = "") -> int:
    """Nothing can be written: each missing input as the error line ``handcap COMMAND: error:
    PATH: no such file`` (the line bpy's side would give, but before bpy loads), the output folder
    made for this run removed again; returns the exit code (an input failed)."""
    for path in missing:
        print(f"handcap {command}: error: {path}: no such file", file=sys.stderr, flush=True)
    if created_folder:
        remove_if_empty(created_folder)
    return exit_codes.FAILED


def cmd_blend(args) -> int:
    """Capture file(s) -> .blend / .fbx / .glb with the bpy module, in this process.

    Missing captures are reported before bpy loads when nothing could be written anyway: one
    output file needs every capture, a folder needs one of them (the others are reported in turn)."""
    output = os.path.abspath(args.output)
    extension = os.path.splitext(output)[1].lower().lstrip(".")
    single = extension in ("blend", "fbx", "glb")
    if extension and not single and not os.path.isdir(output):
        return usage_error("blend", f"{args.output}: unknown output type {extension!r} (use .blend, .fbx, .glb or a folder)")
    folder = os.path.dirname(output) if single else output
    try:
        created = check_writable_folder(folder)
    except FolderError as e:
        return usage_error("blend", str(e))
    missing = [p for p in args.captures if not os.path.exists(p)]
    if missing and (single or len(missing) == len(args.captures)):
        return report_missing("blend", missing, folder if created else "")
    try:
        from blender_addon.convert import convert_many
    except ImportError as e:
        if created:
            remove_if_empty(folder)
        return usage_error("blend", f"Blender's Python module is needed: pip install -e '.[blender]' ({e})")
    code = convert_many(args.captures, args.output)
    if created:
        remove_if_empty(folder)          # nothing was written into the folder made for it
    return code


def cmd_retarget(args) -> int:
    """Capture file(s) -> takes on the armature of RIG.blend -> OUT.blend|.fbx, with the bpy module."""
    output = os.path.abspath(args.output)
    extension = os.path.splitext(output)[1].lower().lstrip(".")
    if extension not in ("blend", "fbx"):
        return usage_error("retarget", f"{args.output}: a retarget writes .blend or .fbx")
    if not os.path.isfile(args.rig):
        return usage_error("retarget", f"--rig {args.rig}: no such file")
    if args.mapping and not os.path.isfile(args.mapping):
        return usage_error("retarget", f"--mapping {args.mapping}: no such file")
    folder = os.path.dirname(output)
    try:
        created = check_writable_folder(folder)
    except FolderError as e:
        return usage_error("retarget", str(e))
    missing = [p for p in args.captures if not os.path.exists(p)]
    if missing:                                           # the takes go into one file: all or nothing
        return report_missing("retarget", missing, folder if created else "")
    try:
        from blender_addon.retarget.bone_transfer import TransferOptions
        from blender_addon.retarget.headless import RetargetJob, retarget_many
    except ImportError as e:
        if created:
            remove_if_empty(folder)
        return usage_error("retarget", f"Blender's Python module is needed: pip install -e '.[blender]' ({e})")
    job = RetargetJob(args.rig, args.armature, args.mapping,
                      TransferOptions(args.wrist_rotation, args.wrist_location, args.metacarpal_share),
                      hand=args.hand)
    code = retarget_many(args.captures, job, output)
    if created:
        remove_if_empty(folder)
    return code


def cmd_addon_zip(args) -> int:
    """Build the installable Blender extension zip."""
    try:
        check_writable_folder(args.output)
    except FolderError as e:
        return usage_error("addon-zip", str(e))
    from .addon_package import build_addon_zip
    try:
        path = build_addon_zip(args.output)
    except RuntimeError as e:
        print(f"handcap addon-zip: error: {' '.join(str(e).split())}", file=sys.stderr)
        return exit_codes.FAILED
    print(f"{path}\ninstall it in Blender: Edit > Preferences > Get Extensions > Install from Disk...")
    return exit_codes.OK


# ---------------------------------------------------------------------------------- parser

class Parser(argparse.ArgumentParser):
    """argparse with the project's rule for usage errors: one line on stderr, exit code 2."""

    def error(self, message: str):
        self.exit(exit_codes.USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def offset_value(text: str):
    """An argparse type for --offsets: a whole number of frames, or 'auto'."""
    return "auto" if text == "auto" else number(int)(text)


def number(kind, low=None, high=None, low_open=False):
    """An argparse type: ``kind`` (int/float) within [low, high] (low excluded when low_open)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}, got {text!r}")
        if value != value or (low is not None and (value <= low if low_open else value < low)) \
                or (high is not None and value > high):
            bound = f"{'above' if low_open else 'at least'} {low}" if low is not None else ""
            bound += (" and " if bound and high is not None else "") + (f"at most {high}" if high is not None else "")
            raise argparse.ArgumentTypeError(f"{text} is out of range (must be {bound})")
        return value
    parse.__name__ = kind.__name__
    return parse


def box(text: str) -> tuple:
    """argparse type of --box."""
    try:
        return parse_box(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--box ")) from None


def add_verbose(parser) -> None:
    parser.add_argument("--verbose", action="store_true",
                        help="also show the log lines and warnings of the libraries underneath, and tracebacks")


def build_parser() -> argparse.ArgumentParser:
    from .engine.shipped import weights_help
    parser = Parser(
        prog="handcap",
        description="3D hand capture from RGB photos and video, delivered as a Blender add-on. Exit codes: 0 every "
                    "input gave a result, 1 an input failed, 2 usage error, 3 no hand found in an input.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the main job on a bundled example and say where the outputs are")
    demo.add_argument("--out", default=DEFAULT_DEMO_DIR, help="output folder (default: %(default)s)")
    add_verbose(demo)
    demo.set_defaults(func=cmd_demo)

    est = sub.add_parser(
        "estimate", help="photos, videos or folders -> capture files (+ overlays)",
        description="Find the hands in photos and videos, estimate their 3D pose and shape, and write one capture "
                    "file (.npz) per input into OUT (turn it into a Blender scene with 'handcap blend' or the "
                    "add-on). A bad input gets a one-line error and the others go on. Exit code: 0 every input "
                    "gave a result, 1 an input failed, 2 usage error (nothing done), 3 every input was read but "
                    "one had no hand (its capture file holds no hand).")
    est.add_argument("inputs", nargs="*", metavar="INPUT", help="photos, videos, or folders of them (or --views)")
    est.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    est.add_argument("--overlay", action="store_true",
                     help="also write OUT/<name>_overlay.png (photos) or .mp4 (videos): mesh and keypoints drawn on "
                          "(at most 2048 pixels on the longer side); with --views (photos): OUT/<first view>_view<V>_overlay.png per view")
    est.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="default: %(default)s (GPU when present)")
    est.add_argument("--weights", default=None, help=weights_help())
    est.add_argument("--hand-model", default="open", metavar="open|PATH",
                     help="hand model of the output: 'open' (shipped) or a MANO_RIGHT.pkl the network was trained with")
    est.add_argument("--hand", choices=["auto", "right", "left"], default="auto",
                     help="which hands to capture (auto: both); with --box, MediaPipe's landmark model tells the "
                          "side of a boxed hand, and this is the side where it cannot (auto: right)")
    est.add_argument("--max-hands", type=number(int, 1), default=None,
                     help="at most this many hands per photo or video frame (default: every hand of a photo, "
                          "2 per video frame)")
    est.add_argument("--landmarks", choices=["full", "lite"], default="full",
                     help="MediaPipe's landmark model: 'full' (default) or 'lite', about 6 ms per frame faster on a "
                          "2-core CPU but its landmarks, which the fit follows, are less exact")
    est.add_argument("--box", action="append", default=[], type=box, metavar=BOX_HELP,
                     help="a hand's region in pixels, used instead of detection (repeat for several hands); clipped "
                          "to the image, an error when it lies outside; negative numbers are fine")
    est.add_argument("--focal", type=number(float, 0, low_open=True), default=None,
                     help="focal length in pixels (default: 50 degrees field of view across the longer side)")
    est.add_argument("--K", default=None, metavar="FILE", help="3x3 intrinsics in pixels (.npy, .json or text) for every input (default: "
                          "PHOTO_K.npy or PHOTO_K.json beside PHOTO.jpg when there, else --focal, else a 50 degree view)")
    est.add_argument("--no-refine", action="store_true", help="skip fitting the hand to the 2D keypoints")
    est.add_argument("--fit-steps", type=number(int, 0), default=FIT_STEPS, help=FIT_STEPS_HELP)
    est.add_argument("--smoothing", type=number(float, 0, 1), default=0.5,
                     help="video: smoothing of each hand's whole-track solve, from 0 (per-frame results) to 1 "
                          "(strongest: half-gain at 0.2 Hz; 0.5: 1.5 Hz), zero lag; gaps up to 0.5 s (1 s between steady "
                          "runs inside the picture) are filled and flagged interpolated at any value (default: %(default)s)")
    est.add_argument("--frame-start", type=number(int, 0), default=0, help="video: first frame, 0-based")
    est.add_argument("--frame-end", type=number(int, -1), default=-1, help="video: last frame, inclusive (-1: the end)")
    est.add_argument("--frame-step", type=number(int, 1), default=1, help="video: use every n-th frame")
    est.add_argument("--threads", type=number(int, 0), default=0, help="CPU threads for the network (0: all cores)")
    est.add_argument("--progress", choices=["text", "json"], default="text",
                     help="'json' prints one JSON object per line (stage, done, total, message) for the add-on")
    views = est.add_argument_group(
        "several calibrated views (docs/multiview.md)",
        "Photos of one instant (or videos filmed together) from several cameras: one hand model is fitted to "
        "every view that sees each hand. "
        "One capture file, named after the first view, in the first camera's frame, with every view's camera.")
    views.add_argument("--views", nargs="+", default=None, metavar="VIEW",
                       help="one photo (or video) per camera, in the cameras file's order (instead of INPUTs)")
    views.add_argument("--cameras", default=None, metavar="CAMERAS.json",
                       help="the views' cameras: a JSON list of {K, R, t} (x_view = R x_first + t), e.g. from "
                            "'handcap calibrate'")
    views.add_argument("--offsets", nargs="+", type=offset_value, default=None, metavar="N",
                       help="videos: view v's frame f + N_v was filmed at the first view's frame f (one number per "
                            "view; default all 0), or 'auto': found from the hands' motion in the first 5 s "
                            "(offsets up to 3 s; the hands must move)")
    ray = est.add_argument_group(
        "on a Ray cluster (pip install -e '.[ray]')",
        "Each video, and each folder's photos (16 at a time), becomes a Ray task run by a worker that loads the "
        "engine once. A lost worker's task is given out again; inputs whose capture file in OUT is complete are "
        "skipped, so a stopped run resumes. INPUT and OUT must be at the same paths on every node.")
    ray.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                     help="run on Ray: alone, the cluster this machine is part of ($RAY_ADDRESS or 'ray start'), else "
                          "a new local one with all cores; or an address: HOST:PORT, ray://HOST:10001, 'local'")
    ray.add_argument("--workers", type=number(int, 1), default=None, metavar="N",
                     help="workers (default: as many as the cluster's CPUs and GPUs hold)")
    ray.add_argument("--cpus-per-task", type=number(float, 0, low_open=True), default=None, metavar="N",
                     help="CPU cores per worker, also its torch threads (default: 1)")
    ray.add_argument("--gpus-per-task", type=number(float, 0), default=None, metavar="N",
                     help="GPUs per worker, e.g. 1, or 0.25 for four workers per GPU (default: 0)")
    add_verbose(est)
    est.set_defaults(func=cmd_estimate)

    live = sub.add_parser(
        "live", help="a camera or a video file -> one JSON record per frame on stdout, as it goes",
        description="Capture hands live: read frames from a camera (an OpenCV index such as 0) or a video file "
                    "standing in for one, estimate each frame's hands as they come (video tracking, as 'handcap "
                    "estimate' does, without the offline smoothing) and write one JSON object per frame on stdout: "
                    "a 'start' record, then 'frame' records (frame, time, latency_ms, fps, hands with side, pose, "
                    "transl, betas, joints_3d, keypoints_2d, confidence), then an 'end' record. It stops when the "
                    "input ends, when stdin is a pipe and is closed, on SIGTERM or Ctrl-C, or after --max-frames. "
                    "The record format is in docs/live.md. Exit code 0 when frames were streamed.")
    live.add_argument("source", metavar="CAMERA|VIDEO", help="a camera index (0 is the first camera) or a video file")
    live.add_argument("--rig", default=None, metavar="FILE.npz",
                      help="also write a capture file with the rest-pose hand of each side (a reader builds its rigs from it)")
    live.add_argument("--as-camera", action="store_true",
                      help="a video file is played at its frame rate and only the newest frame is estimated, as with a "
                           "camera (default: every frame, as fast as the engine goes)")
    live.add_argument("--max-frames", type=number(int, 0), default=0, help="stop after this many frames (0: no limit)")
    live.add_argument("--width", type=number(int, 0), default=0, help="camera: ask for this frame width (0: its default)")
    live.add_argument("--height", type=number(int, 0), default=0, help="camera: ask for this frame height (0: its default)")
    live.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="default: %(default)s")
    live.add_argument("--weights", default=None, help=weights_help())
    live.add_argument("--hand", choices=["auto", "right", "left"], default="auto", help="which hands (auto: both)")
    live.add_argument("--max-hands", type=number(int, 1), default=2, help="at most this many hands per frame")
    live.add_argument("--landmarks", choices=["full", "lite"], default="full", help="MediaPipe's landmark model")
    live.add_argument("--box", action="append", default=[], type=box, metavar=BOX_HELP,
                      help="a hand's region in pixels, used instead of detection on every frame (repeatable)")
    live.add_argument("--focal", type=number(float, 0, low_open=True), default=None,
                      help="focal length in pixels (default: 50 degrees across the longer side)")
    live.add_argument("--K", default=None, metavar="FILE", help="3x3 intrinsics in pixels (.npy, .json or text)")
    live.add_argument("--no-refine", action="store_true", help="skip fitting the hand to the 2D keypoints")
    live.add_argument("--fit-steps", type=number(int, 0), default=FIT_STEPS, help=FIT_STEPS_HELP)
    live.add_argument("--threads", type=number(int, 0), default=0, help="CPU threads for the network (0: all cores but one)")
    add_verbose(live)
    live.set_defaults(func=cmd_live)

    test = sub.add_parser("self-test", help="check this engine: versions, CPU/GPU, one estimate on the bundled photo",
                          description="Report the versions of handcap and its libraries, the device the engine would "
                                      "use (GPU name when there is one), and run the engine once on the bundled photo. "
                                      "Exit code 0 when everything works, 1 otherwise. The add-on's Check Engine runs this.")
    test.add_argument("--json", action="store_true", help="print the report as one JSON object")
    test.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="default: %(default)s")
    test.add_argument("--no-estimate", action="store_true", help="only versions and devices (no model is loaded)")
    add_verbose(test)
    test.set_defaults(func=cmd_self_test)

    blend = sub.add_parser("blend", help="capture file(s) -> .blend, .fbx or .glb (chosen by the extension of OUT)")
    blend.add_argument("captures", nargs="+", metavar="CAPTURE", help="capture files (.npz)")
    blend.add_argument("-o", "--output", required=True, metavar="OUT",
                       help="OUT.blend|.fbx|.glb for one capture, or a folder (one .blend each)")
    add_verbose(blend)
    blend.set_defaults(func=cmd_blend)

    ret = sub.add_parser(
        "retarget", help="capture file(s) -> animation on your own rig (Rigify, Mixamo, Unreal, VRM, custom)",
        description="Put captured hands on the armature in RIG.blend: each target finger bone turns so that its "
                    "direction and curl axis follow the captured finger, whatever its rest pose and bone roll. The "
                    "finger bones are found from their names (Rigify incl. DEF-/ORG-, Mixamo, Unreal/MetaHuman, "
                    "VRM, .L/_l/Left variants) or read from a preset saved in the add-on. Each capture becomes one "
                    "take: an action pushed to an NLA strip named after the capture; other bones get no keys. "
                    "OUT.blend is RIG.blend with the takes; OUT.fbx holds the armature, its meshes and one take "
                    "per capture.")
    ret.add_argument("captures", nargs="+", metavar="CAPTURE", help="capture files (.npz); one take each")
    ret.add_argument("--rig", required=True, metavar="RIG.blend", help="the .blend file holding your character")
    ret.add_argument("--armature", default="", metavar="NAME",
                     help="the armature object to animate (default: the only armature with hand bones)")
    ret.add_argument("--mapping", default="", metavar="PRESET.json",
                     help="a bone mapping preset saved from the add-on (default: found from the bone names)")
    ret.add_argument("--hand", choices=["auto", "left", "right"], default="auto",
                     help="which captured hand to put on the rig (auto: each captured hand the rig has a hand "
                          "for; a side it has none for is skipped with a warning)")
    ret.add_argument("--wrist-rotation", action="store_true",
                     help="also turn the hand bone like the captured hand (world space, arm at rest)")
    ret.add_argument("--wrist-location", action="store_true",
                     help="also move the hand bone to the captured wrist (not for a hand connected to its arm)")
    ret.add_argument("--metacarpal-share", type=number(float, 0, 1), default=0.0,
                     help="share of each knuckle's turn the metacarpal bones take (default: 0, they stay at rest)")
    ret.add_argument("-o", "--output", required=True, metavar="OUT", help="OUT.blend or OUT.fbx")
    add_verbose(ret)
    ret.set_defaults(func=cmd_retarget)

    from .calibration.command import add_parser as add_calibrate     # the command's body: core/calibration
    add_calibrate(sub, number, add_verbose)

    addon = sub.add_parser("addon-zip", help="build the installable Blender extension zip")
    addon.add_argument("-o", "--output", default="dist", help="output folder (default: %(default)s)")
    add_verbose(addon)
    addon.set_defaults(func=cmd_addon_zip)
    return parser


@contextlib.contextmanager
def exit_on_sigterm():
    """SIGTERM (the add-on's Cancel, a job scheduler) ends the command like Ctrl-C does: through
    every ``finally``, so temporary output files are removed."""
    try:
        before = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    except ValueError:                   # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(join_box_values(argv))
    verbose = getattr(args, "verbose", False)
    try:
        with quiet_third_party(verbose), exit_on_sigterm():
            return args.func(args)
    except KeyboardInterrupt:
        print(f"handcap {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:               # a bug: one line (the traceback with --verbose)
        if verbose:
            traceback.print_exc()
        print(f"handcap {args.command}: error: unexpected {type(e).__name__}: {' '.join(str(e).split())} "
              "(run again with --verbose for the details)", file=sys.stderr)
        return exit_codes.FAILED


if __name__ == "__main__":
    raise SystemExit(main())
