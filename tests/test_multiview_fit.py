"""Several calibrated views of one hand (core.multiview): the multi-view fit's Jacobian against finite
differences, its answer against the hand model posed as the truth (projected into three cameras with
1 px noise: no rendering), the matching of hands across views and their sides, and the command line's
checks of --views / --cameras."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from core.engine.fitting import HandFitter
from core.engine.pipeline import HandEstimate
from core.hand_model import HandLayer, PosePrior
from core.hand_model.landmark_points import LandmarkPoints
from core.multiview.cameras import ViewCamera
from core.multiview.fit import MultiViewFitter, move_hand
from core.multiview.matching import ViewHand, group_side, match_views, triangulate

K = np.array([[900.0, 0, 640.0], [0, 900.0, 360.0], [0, 0, 1]])
WIDTH = 1280
CENTRE = np.array([0.0, 0.0, 0.6])          # the hands are near here, 60 cm in front of the first camera


def ring_cameras(angles_deg=(0.0, 40.0, -35.0)) -> list[ViewCamera]:
    """Cameras on a circle around CENTRE (turned about y, and a little about x), all looking at it."""
    cameras = []
    for i, a in enumerate(angles_deg):
        R = Rotation.from_euler("yx", [a, 8.0 * (i % 2)], degrees=True).as_matrix()
        t = CENTRE - R @ CENTRE                       # CENTRE stays 60 cm straight ahead of every camera
        cameras.append(ViewCamera(K.copy(), R, t, (WIDTH, 720)))
    return cameras


@pytest.fixture(scope="module")
def fitter(open_right):
    return HandFitter(HandLayer(open_right, torch.float64), PosePrior(open_right).double()).double()


@pytest.fixture(scope="module")
def layers(open_right, open_left):
    return {"right": HandLayer(open_right, torch.float64), "left": HandLayer(open_left, torch.float64)}


def posed(layers, side, pose, betas, transl) -> np.ndarray:
    """(21, 3) landmark points of a hand of that side posed by the (independent) torch layer."""
    with torch.no_grad():
        out = layers[side](torch.as_tensor(betas)[None], torch.as_tensor(pose)[None], torch.as_tensor(transl)[None],
                           keypoints_only=True)
        return LandmarkPoints(side).double()(out)[0].numpy()


def synthetic_hands(layers, rng):
    """Two true hands (a right and a left one, 10 cm apart; random shapes, one 10% larger than the mean
    hand, one 10% smaller), each with a start as a single-view estimate would give it: pose 0.15 rad
    off, the mean shape, the wrist 3 cm off (mostly in depth)."""
    hands = []
    prior_pose = PosePrior(layers["right"].model).sample(2, torch.Generator().manual_seed(3)).double().numpy()
    for n, side in enumerate(("right", "left")):
        pose = prior_pose[n].copy()
        pose[0] = Rotation.from_euler("xyz", [160.0, 20.0 * n, 10.0], degrees=True).as_rotvec()
        betas = rng.normal(0.0, 1.0, 10)
        betas[0] = 1.5 if side == "right" else -1.5     # beta 0 is size: 7% a unit; one hand large, one small
        transl = CENTRE + np.array([-0.05 + 0.1 * n, 0.0, 0.0])
        truth = posed(layers, side, pose, betas, transl)
        start_pose = pose + rng.normal(0.0, 0.15, pose.shape)
        start_transl = transl + np.array([0.005, -0.005, 0.03])
        start_points = posed(layers, side, start_pose, np.zeros(10), start_transl)
        start = HandEstimate(side=side, score=0.9, box=np.zeros(4), pose=start_pose.astype(np.float32),
                             betas=np.zeros(10, np.float32), transl=start_transl.astype(np.float32),
                             joints_3d=start_points.astype(np.float32), keypoints_2d=np.zeros((21, 2), np.float32))
        hands.append((side, truth, start))
    return hands


def seen(camera: ViewCamera, points: np.ndarray, rng, noise=1.0) -> np.ndarray:
    return camera.project(points) + rng.normal(0.0, noise, (len(points), 2))


def view_hand(v, camera, truth, start, rng, multi: MultiViewFitter = None) -> ViewHand:
    """One hand as view v sees it: its landmarks with 1 px noise, world landmarks (its true bones in
    that view's axes, 3 mm noise), and the start as view v's single-view estimate would hold it."""
    pixels = seen(camera, truth, rng)
    world = camera.to_view(truth) - camera.t + rng.normal(0.0, 0.003, truth.shape)
    estimate = start
    if multi is not None and v:
        moved = move_hand(start.pose, start.transl, start.joints_3d, multi.rest_wrist(start.side, start.betas),
                          camera.R, camera.t)
        estimate = dataclasses.replace(start, **{k: a.astype(np.float32) for k, a in zip(("pose", "transl", "joints_3d"), moved)})
    return ViewHand(view=v, keypoints_2d=pixels, weights=np.ones(21), box_side=float(np.ptp(pixels, 0).max()),
                    score=0.9, side=start.side, side_confidence=0.9, world=world, estimate=estimate)


def test_multiview_jacobian_matches_finite_differences(fitter):
    rng = np.random.default_rng(0)
    cameras = ring_cameras()
    energy = fitter.energy
    N, V = 2, 3
    pose = rng.normal(0.0, 0.3, (N, 16, 3))
    betas, wrist = rng.normal(0.0, 0.5, (N, 10)), np.array([[0.02, 0.01, 0.58], [-0.03, 0.0, 0.62]])
    points = fitter.kinematics.points(pose, betas, np.ones(N), derivatives=False)[0] + wrist[:, None]
    R = np.stack([np.stack([c.R for c in cameras])] * N)
    t = np.stack([np.stack([c.t for c in cameras])] * N)
    Ks = np.tile(K, (N, V, 1, 1))
    targets = np.stack([np.stack([seen(c, p, rng, 0.5) for c in cameras]) for p in points])     # near: quadratic Huber
    weights = rng.uniform(0.5, 1.0, (N, V, 21))
    problem = energy.views_problem(Ks, R, t, targets, weights, points - points[:, :1] + rng.normal(0, 0.01, points.shape),
                                   np.full((N, V), 120.0), np.ones(N))
    x = energy.join(pose, betas, wrist) + rng.normal(0.0, 1e-3, (N, 61))        # near the targets: no Huber kink
    at = energy.evaluate(x, problem)
    eps = 1e-6
    for column in range(x.shape[1]):
        step = np.zeros_like(x)
        step[:, column] = eps
        numeric = (energy.evaluate(x + step, problem)["r"] - energy.evaluate(x - step, problem)["r"]) / (2 * eps)
        np.testing.assert_allclose(at["J"][..., column], numeric, atol=2e-5 * max(1.0, np.abs(numeric).max()))
    np.testing.assert_allclose(at["energy"], 0.5 * (at["r"] ** 2).sum(1), rtol=1e-9)
    # a view of weight 0 changes nothing: the first view alone is the single-camera problem
    single = energy.problem(Ks[:, 0], targets[:, 0], weights[:, 0], points - points[:, :1], np.full(N, 120.0), np.ones(N))
    padded = energy.views_problem(Ks, R, t, targets, weights * np.array([1.0, 0.0, 0.0])[:, None],
                                  points - points[:, :1], np.full((N, V), 120.0), np.ones(N))
    np.testing.assert_allclose(energy.evaluate(x, padded, jacobian=False)["energy"],
                               energy.evaluate(x, single, jacobian=False)["energy"], rtol=1e-12)


def test_three_views_recover_the_hand_one_view_does_not(fitter, layers, capsys):
    rng = np.random.default_rng(1)
    cameras = ring_cameras()
    multi = MultiViewFitter(fitter)
    errors, depth = {1: [], 3: []}, {1: [], 3: []}
    for side, truth, start in synthetic_hands(layers, rng):
        group = [view_hand(v, cameras[v], truth, start, rng, multi) for v in range(3)]
        for count in (1, 3):                   # one view: the same fit (start, steps) on the first view alone
            fit = multi._fit_many([group[:count]], cameras, [WIDTH] * 3)[0]
            assert fit.side == side
            # the capture rebuilds the hand from pose, shape and transl: they must give the same points
            np.testing.assert_allclose(posed(layers, side, fit.pose, fit.betas, fit.transl), fit.joints_3d, atol=2e-5)
            errors[count].append(np.linalg.norm(fit.joints_3d - truth, axis=1).mean() * 1000)
            depth[count].append(abs((fit.joints_3d - truth)[:, 2].mean()) * 1000)
        # a hand only the second view sees keeps that view's estimate, moved into the first view's frame
        alone = multi.fit([[group[1]]], cameras, [WIDTH] * 3)[0]
        np.testing.assert_allclose(alone.joints_3d, start.joints_3d, atol=2e-5)
        np.testing.assert_allclose(posed(layers, side, alone.pose, alone.betas, alone.transl), start.joints_3d, atol=2e-5)
    with capsys.disabled():
        print(f"\n  camera-space joint error, mm (right, left): 1 view {np.round(errors[1], 1)} "
              f"(depth {np.round(depth[1], 1)}), 3 views {np.round(errors[3], 1)} (depth {np.round(depth[3], 1)})")
    assert max(errors[3]) < 5.0
    assert min(errors[1]) > 2.0 * max(errors[3])


def test_matching_two_hands_in_three_views_and_their_sides(layers):
    rng = np.random.default_rng(2)
    cameras = ring_cameras()
    hands = synthetic_hands(layers, rng)
    per_view = []
    for v, camera in enumerate(cameras):
        found = [view_hand(v, camera, truth, start, rng) for _, truth, start in hands]
        found[0].estimate = "right hand"                         # tags to check the groups by
        found[1].estimate = "left hand"
        if v == 1:                                               # this view calls the left hand right, unsure
            found[1].side, found[1].side_confidence = "right", 0.7
        per_view.append(found[::-1] if v == 2 else found)        # another order in the last view
    groups = match_views(per_view, cameras)
    assert len(groups) == 2
    for group in groups:
        assert [h.view for h in group] == [0, 1, 2]
        assert len({h.estimate for h in group}) == 1
        side, confidence = group_side(group)
        assert side == group[0].estimate.split()[0]
        assert confidence > 0.95
    # a hand only one view sees gets a group of its own
    extra = view_hand(1, cameras[1], hands[0][1] + np.array([0.0, 0.25, 0.0]), hands[0][2], rng)
    assert len(match_views([per_view[0], per_view[1] + [extra], per_view[2]], cameras)) == 3


def test_triangulation_is_exact_without_noise():
    cameras = ring_cameras()
    points = CENTRE + np.random.default_rng(3).normal(0.0, 0.05, (21, 3))
    from core.multiview.matching import projection_matrices
    X = triangulate(projection_matrices(cameras), np.stack([c.project(points) for c in cameras]))
    np.testing.assert_allclose(X, points, atol=1e-9)


def run_cli(argv, capsys) -> tuple[int, str]:
    from core.cli import main
    code = main(argv)
    return code, capsys.readouterr().err


def test_command_line_checks_views_and_cameras(tmp_path, capsys):
    from core.multiview.cameras import save_cameras
    photos = []
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes(b"not checked before the engine loads")
        photos.append(str(tmp_path / name))
    three = str(tmp_path / "three.json")
    save_cameras(three, ring_cameras())
    two = str(tmp_path / "two.json")
    save_cameras(two, ring_cameras()[:2])
    out = str(tmp_path / "out")
    code, err = run_cli(["estimate", "--views", *photos, "--cameras", three, "-o", out], capsys)
    assert code == 2 and "describes 3 cameras, but 2 views were given" in err
    code, err = run_cli(["estimate", "--views", *photos, "-o", out], capsys)
    assert code == 2 and "--views needs --cameras" in err
    code, err = run_cli(["estimate", photos[0], "--views", *photos, "--cameras", two, "-o", out], capsys)
    assert code == 2 and "either INPUTs or --views" in err
    code, err = run_cli(["estimate", "--views", *photos, "--cameras", two, "--offsets", "0", "-o", out], capsys)
    assert code == 2 and "--offsets gives 1 numbers for 2 views" in err
    code, err = run_cli(["estimate", "--views", *photos, "--cameras", two, "--offsets", "0", "auto", "-o", out], capsys)
    assert code == 2 and "'auto' alone" in err
    clip = tmp_path / "c.mp4"
    clip.write_bytes(b"x")
    code, err = run_cli(["estimate", "--views", photos[0], str(clip), "--cameras", two, "-o", out], capsys)
    assert code == 2 and "not a mix" in err
    code, err = run_cli(["estimate", "--views", str(clip), str(clip), "--cameras", two, "--overlay", "-o", out], capsys)
    assert code == 2 and "photos only" in err
    code, err = run_cli(["estimate", "--views", photos[0], str(tmp_path / "nope.jpg"), "--cameras", two, "-o", out], capsys)
    assert code == 1 and "nope.jpg: no such file" in err
    assert not os.path.exists(out)                      # nothing written, the folder made for it removed
    with open(two) as f:
        assert len(json.load(f)) == 2


# A second view made from one photo: a camera turned TURN degrees about a point PLANE metres straight ahead
# sees a flat scene in the plane z = PLANE through the homography K (R + t n^T / PLANE) K^-1. For the demo
# photo (f = 549 px) the hand in that plane is about 10% larger than one view's estimate makes it (at
# 0.225 m): a plausible hand at another depth, which only the two views together can tell.
TURN, PLANE = 25.0, 0.25


def stereo_pair(tmp_path):
    """The demo photo (BGR), the second view of it, the camera's K, (R, t) of the second view, and
    the cameras file of the pair."""
    import cv2
    from core.capture import default_intrinsics
    from core.multiview.cameras import save_cameras
    first = cv2.imread(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "core", "assets",
                                    "demo_hand.jpg"))
    h, w = first.shape[:2]
    K0 = default_intrinsics(w, h).astype(np.float64)
    R = Rotation.from_euler("y", TURN, degrees=True).as_matrix()
    t = np.array([0.0, 0.0, PLANE]) - R @ np.array([0.0, 0.0, PLANE])
    H = K0 @ (R + np.outer(t, [0.0, 0.0, 1.0]) / PLANE) @ np.linalg.inv(K0)
    second = cv2.warpPerspective(first, H, (w, h), borderMode=cv2.BORDER_REPLICATE)
    cameras = str(tmp_path / "cameras.json")
    save_cameras(cameras, [ViewCamera(K0, np.eye(3), np.zeros(3), (w, h)), ViewCamera(K0, R, t, (w, h))])
    return first, second, t, cameras


def check_stereo_capture(path, t, sources, offsets, frames, capsys, what):
    from blender_addon.capture_format import load_capture
    capture = load_capture(path)                          # as the add-on reads it
    assert capture.views.num_views == 2
    assert list(capture.views.source_path) == [os.path.abspath(s) for s in sources]
    assert list(capture.views.frame_offset) == offsets
    np.testing.assert_allclose(capture.views.t[1], t, atol=1e-7)
    assert len(capture.tracks) == 1 and len(capture.tracks[0].frame_index) == frames
    depth = np.median(capture.tracks[0].joints_3d[:, :, 2])
    with capsys.disabled():
        print(f"\n  {what}: median hand depth {depth:.3f} m, the plane at {PLANE:.3f} m")
    assert abs(depth / PLANE - 1) < 0.04


def test_estimate_views_on_a_photo_and_a_turned_view_of_it(tmp_path, capsys):
    """The command line end to end on a photo and a second view of it (see TURN): the hand lies in the
    plane, whatever depth one view alone would give it."""
    import cv2
    from core.capture import default_intrinsics
    first, second, t, cameras = stereo_pair(tmp_path)
    paths = [str(tmp_path / "first.png"), str(tmp_path / "second.png")]
    cv2.imwrite(paths[0], first)
    cv2.imwrite(paths[1], second)
    out = str(tmp_path / "out")
    code, err = run_cli(["estimate", "--views", *paths, "--cameras", cameras, "-o", out, "--device", "cpu",
                         "--overlay"], capsys)
    assert code == 0, err
    check_stereo_capture(os.path.join(out, "first.npz"), t, paths, [0, 0], 1, capsys, "photos")
    # --overlay: one picture per view. Where each differs from its photo (the mesh drawn on) is, in view 1,
    # where view 0's drawing goes under the homography that made view 1 (the hand lies in that plane);
    # the same drawing moved 40 px overlaps far less (0.56 against 0.84 when written)
    h, w = first.shape[:2]
    drawn = []
    for v, photo in enumerate((first, second)):
        overlay = cv2.imread(os.path.join(out, f"first_view{v}_overlay.png"))
        assert overlay is not None and overlay.shape == photo.shape
        changed = (np.abs(overlay.astype(int) - photo.astype(int)).max(2) > 8).astype(np.uint8)
        drawn.append(cv2.morphologyEx(changed, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8)) > 0)
    K0 = default_intrinsics(w, h).astype(np.float64)
    R = Rotation.from_euler("y", TURN, degrees=True).as_matrix()
    H = K0 @ (R + np.outer(t, [0.0, 0.0, 1.0]) / PLANE) @ np.linalg.inv(K0)
    carried = cv2.warpPerspective(drawn[0].astype(np.uint8), H, (w, h), flags=cv2.INTER_NEAREST) > 0
    assert drawn[1].sum() > 0.05 * h * w
    assert (carried & drawn[1]).sum() / (carried | drawn[1]).sum() > 0.7


def test_estimate_views_on_two_videos_with_an_offset(tmp_path, capsys):
    """The same pair as two short videos, the second one frame late (--offsets 0 1): one track over the
    first view's frames, at the stereo depth."""
    import cv2
    first, second, t, cameras = stereo_pair(tmp_path)
    paths = [str(tmp_path / "first.mp4"), str(tmp_path / "second.mp4")]
    for path, frames in ((paths[0], [first] * 3), (paths[1], [np.zeros_like(second)] + [second] * 3)):
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (first.shape[1], first.shape[0]))
        for frame in frames:
            writer.write(frame)
        writer.release()
    out = str(tmp_path / "out")
    code, err = run_cli(["estimate", "--views", *paths, "--cameras", cameras, "--offsets", "0", "1", "-o", out,
                         "--device", "cpu"], capsys)
    assert code == 0, err
    check_stereo_capture(os.path.join(out, "first.npz"), t, paths, [0, 1], 3, capsys, "videos")


def test_the_addons_views_command_line_parses():
    """The command the Blender add-on runs for several views (blender_addon.engine) is one the engine takes."""
    from blender_addon import engine
    from core.cli import build_parser
    options = engine.EstimateOptions(hand="left", max_hands=2, smoothing=0.2, frame_start=3, frame_end=40,
                                     frame_step=2, device="cpu")
    command = engine.estimate_views_command("/env/python", ["/v/a.mp4", "/v/b.mp4"], "/v/cams.json", "/out", options)
    args = build_parser().parse_args(command[3:])
    assert args.views == ["/v/a.mp4", "/v/b.mp4"] and args.cameras == "/v/cams.json" and args.inputs == []
    assert (args.hand, args.max_hands, args.smoothing, args.frame_start, args.frame_end, args.frame_step) == \
        ("left", 2, 0.2, 3, 40, 2)


def test_video_tracks_link_a_hand_whose_depth_jumps_along_one_views_rays():
    """A hand only view 1 sees: its single-view depth slides along view 1's rays between instants (its
    projection into view 0 wanders); the multi-view closeness still links it, computed in view 1 by
    projection, while a second hand of that side 30 cm away (two hand lengths) is not linked."""
    from core.engine.tracking import Track
    from core.multiview.video import views_closeness
    cameras = ring_cameras()
    hand = np.random.default_rng(3).normal(0.0, 0.02, (21, 3)) + np.array([0.05, 0.0, 0.6])   # ~12 cm across
    centre = cameras[1].centre
    slid = centre + (hand - centre) * 1.25                # 25% farther along view 1's rays: same picture there
    np.testing.assert_allclose(cameras[1].project(slid), cameras[1].project(hand), atol=1e-6)
    assert np.linalg.norm(cameras[0].project(slid) - cameras[0].project(hand), axis=1).mean() > 30   # pixels
    close = views_closeness(cameras)
    track = Track(side="right", frames={0: dataclasses.replace(HAND_TEMPLATE, joints_3d=hand)}, last_frame=0)
    assert close(track, dataclasses.replace(HAND_TEMPLATE, joints_3d=slid)) > 0.9
    other = hand + np.array([0.3, 0.0, 0.0])
    assert close(track, dataclasses.replace(HAND_TEMPLATE, joints_3d=other)) == 0.0


HAND_TEMPLATE = HandEstimate(side="right", score=1.0, box=np.zeros(4), pose=np.zeros((16, 3)), betas=np.zeros(10),
                             transl=np.zeros(3), joints_3d=np.zeros((21, 3)), keypoints_2d=np.zeros((21, 2)))


def test_offsets_found_from_the_hands_motion_and_refused_when_it_does_not_tell():
    """Landmarks of a hand moving on a path, seen by two cameras, the second one started 7 frames late:
    the least-cost offset is -7 (view 1's frame f - 7 shows view 0's frame f); a hand that stays still
    fits every offset alike, and the search refuses to guess."""
    from core.multiview.matching import projection_matrices
    from core.multiview.offsets import OffsetSearchError, best_offset, offset_costs
    cameras = ring_cameras((0.0, 50.0))
    rng = np.random.default_rng(5)
    shape = rng.normal(0.0, 0.025, (21, 3))
    frames = np.arange(120)
    path = np.stack([0.08 * np.sin(frames / 9.0), 0.05 * np.cos(frames / 7.0), 0.6 + 0.04 * np.sin(frames / 11.0)], 1)

    def series(camera, shift, moving=True):
        out = {}
        for f in frames:
            source = f + shift                                   # this camera's frame f shows the instant f + shift
            if 0 <= source < len(frames):
                points = shape + (path[source] if moving else path[0])
                pixels = camera.project(points) + rng.normal(0.0, 1.0, (21, 2))
                out[int(f)] = [(pixels, float(np.ptp(pixels, axis=0).max()))]
        return out

    P = projection_matrices(cameras)
    costs = offset_costs(series(cameras[0], 0), series(cameras[1], 7), P, max_offset=20)
    assert best_offset(costs, "view1.mp4") == -7
    with pytest.raises(OffsetSearchError, match="view1.mp4"):
        best_offset(offset_costs(series(cameras[0], 0, False), series(cameras[1], 7, False), P, 20), "view1.mp4")
