"""``handcap calibrate``: the cameras file of a rig, from a ChArUco board filmed by every camera or from the
hands alone. The command's arguments and body; ``core.cli`` only registers it.

Errors follow the command line's rule (docs/command_line.md): one line on stderr naming the clip and the
problem; exit code 2 when the clips cannot calibrate the rig (a missing clip, a clip where the board is never
seen, too few frames seen by two cameras at once), 3 when a clip has no hand (``--hands``).
"""

from __future__ import annotations

import os
import sys

import numpy as np

from blender_addon import exit_codes

from .spec import DEFAULT_BOARD, DEFAULT_DICTIONARY, DICTIONARIES, BoardSpec, CalibrationError

HELP = "ChArUco board (or hand) clips from every camera -> CAMERAS.json for estimate --views"
DESCRIPTION = (
    "Calibrate a rig of cameras for 'handcap estimate --views ... --cameras CAMERAS.json'. Film a ChArUco board "
    "(print one with --print-board) with every camera at once, moving and tilting it where the cameras see it "
    "together; give the clips in the order of the views. Each camera's intrinsics come from its own clip; the "
    "cameras' poses from the frames two cameras see the board in; a bundle adjustment then refines everything. "
    "The reprojection RMS (pixels) of each camera is printed before and after it: under 1 px is a good "
    "calibration. View 1 is the origin (R = I, t = 0); t is in metres. With --hands, no board: the landmarks "
    "of one hand seen by every camera give the poses (the intrinsics must be given: --intrinsics from an "
    "earlier board calibration, or --focal-px), and the hand's size gives the scale (the mean hand: a larger "
    "or smaller hand scales every baseline alike, by up to about 10%).")


def add_parser(sub, number, add_verbose) -> None:
    """Register ``calibrate`` on the subparsers ``sub`` (``core.cli``'s helpers passed in)."""
    cal = sub.add_parser("calibrate", help=HELP, description=DESCRIPTION)
    cal.add_argument("clips", nargs="*", metavar="CLIP",
                     help="one video (or folder of frames) per camera, in view order, all filmed at once")
    cal.add_argument("-o", "--output", metavar="CAMERAS.json", help="the cameras file to write")
    cal.add_argument("--board", nargs=4, metavar=("SQUARES_X", "SQUARES_Y", "SQUARE_M", "MARKER_M"),
                     default=[str(v) for v in DEFAULT_BOARD],
                     help="the ChArUco board: squares across and down, square and marker side in metres as "
                          "measured on the print (default: %(default)s, A4 landscape at 100%%)")
    cal.add_argument("--dictionary", choices=DICTIONARIES, default=DEFAULT_DICTIONARY,
                     help="the board's ArUco dictionary (default: %(default)s)")
    cal.add_argument("--print-board", metavar="OUT.png",
                     help="write the board as a PNG to print at 100%% scale (300 dpi); no clips needed")
    cal.add_argument("--stride", type=number(int, 1), default=None,
                     help="use every n-th frame (default: 5 with the board, 2 with --hands)")
    cal.add_argument("--offsets", nargs="+", type=int, metavar="FRAMES",
                     help="per clip, the frame showing the first clip's frame 0 (default: 0 for every clip)")
    cal.add_argument("--distortion", choices=["none", "radial", "full"], default="radial",
                     help="lens distortion fitted per camera: none, radial (k1, k2) or full (k1, k2, p1, p2, k3) "
                          "(default: %(default)s)")
    cal.add_argument("--refine-intrinsics", action="store_true",
                     help="let the bundle adjustment also move each camera's fx, fy, cx, cy, k1, k2")
    cal.add_argument("--hands", action="store_true",
                     help="calibrate from one hand seen by every camera instead of a board (intrinsics assumed "
                          "known: --intrinsics or --focal-px)")
    cal.add_argument("--intrinsics", metavar="CAMERAS.json",
                     help="--hands: each camera's K and distortion from this cameras file (e.g. an earlier board "
                          "calibration of the same cameras); its poses are ignored")
    cal.add_argument("--focal-px", type=number(float, 0, low_open=True),
                     help="--hands: every camera's focal length in pixels (principal point at the image centre, "
                          "no distortion)")
    cal.add_argument("--hand", choices=["auto", "right", "left"], default="auto",
                     help="--hands: which hand to use (auto: the only one when no frame shows two, else the side "
                          "every camera sees most often)")
    cal.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                     help="--hands: where the hand detector runs (default: %(default)s)")
    add_verbose(cal)
    cal.set_defaults(func=run)


def _error(message: str, code: int = exit_codes.USAGE) -> int:
    print(f"handcap calibrate: error: {message}", file=sys.stderr, flush=True)
    return code


def _board(args) -> BoardSpec:
    try:
        sx, sy = int(args.board[0]), int(args.board[1])
        square, marker = float(args.board[2]), float(args.board[3])
    except ValueError:
        raise CalibrationError(f"--board {' '.join(args.board)}: expected SQUARES_X SQUARES_Y (whole numbers) "
                               "SQUARE_M MARKER_M (metres)") from None
    try:
        return BoardSpec(sx, sy, square, marker, args.dictionary)
    except ValueError as e:
        raise CalibrationError(f"--board: {e}") from None


def _check(args) -> None:
    """What can be checked before any clip is read; CalibrationError otherwise."""
    if args.print_board is None and not args.clips:
        raise CalibrationError("give the clips of every camera (or --print-board OUT.png)")
    if args.clips:
        if len(args.clips) < 2:
            raise CalibrationError("give one clip per camera: at least two")
        if not args.output:
            raise CalibrationError("-o CAMERAS.json is required")
        folder = os.path.dirname(os.path.abspath(args.output))
        if os.path.isdir(args.output) or (os.path.exists(folder) and not os.access(folder, os.W_OK)):
            raise CalibrationError(f"-o {args.output}: cannot write a file there")
        for clip in args.clips:
            if not os.path.exists(clip):
                raise CalibrationError(f"{clip}: no such file")
        if args.offsets is not None and len(args.offsets) != len(args.clips):
            raise CalibrationError(f"--offsets: {len(args.offsets)} value(s) for {len(args.clips)} clips")
    if args.hands and args.clips and args.intrinsics is None and args.focal_px is None:
        raise CalibrationError("--hands needs the cameras' intrinsics: --intrinsics CAMERAS.json (from a board "
                               "calibration) or --focal-px F")
    if not args.hands and (args.intrinsics or args.focal_px):
        raise CalibrationError("--intrinsics and --focal-px are options of --hands")


def run(args) -> int:
    try:
        _check(args)
        spec = _board(args)
    except CalibrationError as e:
        return _error(str(e))
    if args.print_board:
        from .board import write_print_image
        try:
            width, height = write_print_image(spec, args.print_board)
        except CalibrationError as e:
            return _error(str(e))
        w, h = spec.size_m
        print(f"board: {args.print_board} ({width} x {height} px at 300 dpi; print at 100% scale: the squares "
              f"measure {spec.square_m * 1000:g} mm, the board {w * 1000:g} x {h * 1000:g} mm; measure them on the "
              "print and give what you measure to --board)")
        if not args.clips:
            return exit_codes.OK
    offsets = args.offsets or [0] * len(args.clips)
    names = [os.path.basename(os.path.normpath(c)) for c in args.clips]
    try:
        if args.hands:
            return _run_hands(args, names, offsets)
        return _run_board(args, spec, names, offsets)
    except CalibrationError as e:
        print(file=sys.stderr)
        return _error(str(e))


def _run_board(args, spec: BoardSpec, names: list, offsets: list) -> int:
    from core.multiview.cameras import save_cameras
    from .board import find_board, stderr_progress
    from .extrinsics import solve_rig
    from .intrinsics import calibrate_intrinsics
    stride = args.stride or 5
    views, sizes = [], []
    for clip, name, offset in zip(args.clips, names, offsets):
        found, size = find_board(clip, spec, stride, offset, stderr_progress(name))
        print(f"\r  {name}: board in {len(found)} sampled frames", file=sys.stderr, flush=True)
        views.append(found)
        sizes.append(size)
    intrinsics = [calibrate_intrinsics(spec, v, s, n, args.distortion) for v, s, n in zip(views, sizes, names)]
    rig = solve_rig(spec, [c.views for c in intrinsics], intrinsics, names, refine_intrinsics=args.refine_intrinsics)
    save_cameras(args.output, rig.cameras)
    print(f"cameras: {args.output} ({len(names)} views, {rig.instants} board poses, stride {stride})")
    rows = [(c.extra["name"], f"{c.K[0, 0]:.1f}", f"{intr.rms_px:.3f}", str(shared), f"{b:.3f}", f"{a:.3f}",
             f"{np.linalg.norm(c.centre):.4f}", f"{np.degrees(np.arccos(np.clip((np.trace(c.R) - 1) / 2, -1, 1))):.2f}")
            for c, intr, shared, b, a in zip(rig.cameras, intrinsics, rig.shared, rig.rms_before, rig.rms_after)]
    _table(("view", "focal px", "intrinsics rms px", "shared frames", "rms before BA px", "rms after BA px",
            "baseline m", "angle deg"), rows)
    return exit_codes.OK


def _hand_intrinsics(args, sizes: list) -> list:
    if args.intrinsics:
        from core.multiview.cameras import CamerasError, load_cameras
        try:
            cameras = load_cameras(args.intrinsics, views=len(sizes))
        except CamerasError as e:
            raise CalibrationError(f"--intrinsics {e}") from None
        return [(c.K, c.distortion, size) for c, size in zip(cameras, sizes)]
    f = args.focal_px
    return [(np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]]), None, (w, h)) for w, h in sizes]


def _run_hands(args, names: list, offsets: list) -> int:
    from core.engine.network import resolve_device
    from core.multiview.cameras import save_cameras
    from .board import stderr_progress
    from .hands import calibrate_from_hands, choose_side, find_hands
    stride = args.stride or 2
    device = str(resolve_device(args.device))
    found, sizes = [], []
    for clip, name, offset in zip(args.clips, names, offsets):
        hands, size = find_hands(clip, stride, offset, device, stderr_progress(name, "hands"))
        print(f"\r  {name}: right hand in {len(hands['right'])}, left hand in {len(hands['left'])} sampled frames",
              file=sys.stderr, flush=True)
        if not hands["right"] and not hands["left"]:
            return _error(f"{clip}: no hand found in any of its sampled frames", exit_codes.NO_HAND)
        found.append(hands)
        sizes.append(size)
    side = choose_side(found, args.hand)
    rig = calibrate_from_hands([f[side] for f in found], _hand_intrinsics(args, sizes), names)
    save_cameras(args.output, rig.cameras)
    which = "the one hand in view" if side == "alone" else f"the {side} hand"
    print(f"cameras: {args.output} ({len(names)} views from {which}, stride {stride}; "
          f"{100 * rig.dropped:.1f}% of the landmarks dropped as outliers; scale from the mean hand's bones)")
    rows = [(c.extra["name"], str(s), f"{b:.2f}", f"{a:.2f}", f"{np.linalg.norm(c.centre):.4f}",
             f"{np.degrees(np.arccos(np.clip((np.trace(c.R) - 1) / 2, -1, 1))):.2f}")
            for c, s, b, a in zip(rig.cameras, rig.shared, rig.rms_before, rig.rms_after)]
    _table(("view", "shared frames", "rms before BA px", "rms after BA px", "baseline m", "angle deg"), rows)
    return exit_codes.OK


def _table(header: tuple, rows: list) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for row in (header, *rows):
        print("  " + "  ".join(cell.rjust(w) for cell, w in zip(row, widths)))
