"""Crop transforms: geometry follows the keypoints exactly, flips/sides, 3D and pose, normalisation."""

import math

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from core.hand_model import HandLayer, PosePrior
from core.hand_model.rotations import mirror_axis_angle
from training.augment import (EvalTransform, TrainTransform, add_occluders, crop_matrix, crop_sample, keypoint_box,
                              procedural_texture, replace_background)
from training.losses import camera_from_2d3d
from training.sample import IMAGE_MEAN, IMAGE_STD

DOTS = {0: (255, 0, 0), 8: (0, 255, 0), 20: (0, 0, 255)}   # keypoint -> dot colour
F_PX = 500.0


def _raw(keypoints, height=200, width=240, is_left=False, joints=None, vertices=None, pose=None):
    """A raw sample whose image has coloured dots at some keypoints and whose mask is a disc at keypoint 0."""
    image = np.full((height, width, 3), 90, np.uint8)
    mask = np.zeros((height, width), np.uint8)
    cv2.circle(mask, tuple(int(round(c)) for c in keypoints[0]), 6, 1, -1)
    for k, colour in DOTS.items():
        cv2.circle(image, tuple(int(round(c)) for c in keypoints[k]), 3, colour, -1)
    V = 1609 if vertices is None else len(vertices)
    return {
        "image": torch.from_numpy(image.transpose(2, 0, 1).copy()),
        "mask": torch.from_numpy(mask),
        "keypoints_2d": torch.as_tensor(keypoints, dtype=torch.float32),
        "joints_3d": torch.zeros(21, 3) if joints is None else torch.as_tensor(joints, dtype=torch.float32),
        "vertices": torch.zeros(V, 3) if vertices is None else torch.as_tensor(vertices, dtype=torch.float32),
        "pose": torch.zeros(16, 3) if pose is None else torch.as_tensor(pose, dtype=torch.float32),
        "betas": torch.zeros(10),
        "K": torch.tensor([[F_PX, 0, width / 2], [0, F_PX, height / 2], [0, 0, 1.0]]),
        "is_left": torch.tensor(is_left),
        "has_mask": torch.tensor(True),
        "has_3d": torch.tensor(joints is not None),
        "has_mesh": torch.tensor(vertices is not None),
    }


def _grid_keypoints(seed=0):
    """21 keypoints spread over ~80 px with the three dotted ones far apart."""
    rng = np.random.default_rng(seed)
    kp = rng.uniform(80, 160, size=(21, 2))
    kp[0], kp[8], kp[20] = (120.0, 150.0), (150.0, 85.0), (100.0, 95.0)
    return kp


def _pixels(normalised, size):
    return (normalised + 1.0) * size / 2.0 - 0.5


def _unnormalise(image):
    return (image * torch.tensor(IMAGE_STD).view(3, 1, 1) + torch.tensor(IMAGE_MEAN).view(3, 1, 1)) * 255


def _centroid(weights):
    ys, xs = np.mgrid[: weights.shape[0], : weights.shape[1]]
    return np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()


def _geometric_only(**kw):
    return TrainTransform(size=96, color_jitter=None, occluder_prob=0.0, background_prob=0.0, **kw)


@pytest.mark.parametrize("is_left", [False, True])
def test_dots_and_mask_follow_the_keypoints(is_left):
    kp = _grid_keypoints()
    transform = _geometric_only(scale_jitter=0.2, translation_jitter=0.1)
    for seed in range(4):
        torch.manual_seed(seed)
        crop = transform(_raw(kp, is_left=is_left))
        assert not bool(crop["is_left"])
        image = _unnormalise(crop["image"]).numpy()
        points = _pixels(crop["keypoints_2d"].numpy(), 96)
        for k, colour in DOTS.items():
            channel = int(np.argmax(colour))
            others = [c for c in range(3) if c != channel]
            weight = np.clip(image[channel] - image[others].max(0) - 40, 0, None)   # the dot's colour only
            np.testing.assert_allclose(_centroid(weight), points[k], atol=0.35)
        np.testing.assert_allclose(_centroid(crop["mask"].numpy()), points[0], atol=0.35)


def test_left_hands_are_flipped_to_the_right_mirror_image():
    kp = _grid_keypoints()
    right = EvalTransform(96)(_raw(kp))
    left = EvalTransform(96)(_raw(kp, is_left=True))
    np.testing.assert_allclose(left["keypoints_2d"][:, 0], -right["keypoints_2d"][:, 0], atol=1e-5)
    np.testing.assert_allclose(left["keypoints_2d"][:, 1], right["keypoints_2d"][:, 1], atol=1e-5)
    np.testing.assert_allclose(left["image"].numpy(), right["image"].numpy()[:, :, ::-1], atol=1e-5)
    assert not bool(left["is_left"]) and not bool(right["is_left"])


def _posed_hand(model, pose, transl):
    out = HandLayer(model)(pose=pose[None], transl=torch.as_tensor(transl, dtype=torch.float32)[None])
    return out.keypoints[0], out.vertices[0]


def _mesh_raw(model, pose, transl=(0.02, -0.01, 0.5)):
    joints, vertices = _posed_hand(model, pose, transl)
    kp = joints @ torch.tensor([[F_PX, 0, 120], [0, F_PX, 100], [0, 0, 1.0]]).T
    return _raw((kp[:, :2] / kp[:, 2:]).numpy(), is_left=model.side == "left", joints=joints, vertices=vertices, pose=pose)


def test_left_raw_becomes_right_crop_with_mirrored_3d_and_pose(open_left, open_right):
    pose = PosePrior(open_right).sample(1, torch.Generator().manual_seed(0), global_orient=True)[0]
    raw = _mesh_raw(open_left, mirror_axis_angle(pose))       # a left hand
    crop = EvalTransform(96)(raw)
    rel = raw["joints_3d"] - raw["joints_3d"][0]
    np.testing.assert_allclose(crop["joints_3d"].numpy(), rel.numpy() * [-1, 1, 1], atol=1e-6)
    assert not bool(crop["is_left"])
    # the crop's pose drives the RIGHT model to the crop's vertices and joints
    joints, vertices = _posed_hand(open_right, crop["pose"], (0, 0, 0))
    np.testing.assert_allclose((vertices - joints[0]).numpy(), crop["vertices"].numpy(), atol=1e-5)
    np.testing.assert_allclose(crop["pose"].numpy(), pose.numpy(), atol=1e-5)


@pytest.mark.parametrize("side", ["right", "left"])
def test_rotated_and_flipped_crops_keep_pose_mesh_and_joints_consistent(side, open_left, open_right):
    model = open_right if side == "right" else open_left
    pose = PosePrior(model).sample(1, torch.Generator().manual_seed(1), global_orient=True)[0]
    raw = _mesh_raw(model, pose)
    torch.manual_seed(3)
    crop = _geometric_only(flip_prob=0.5)(raw)
    crop_model = open_left if bool(crop["is_left"]) else open_right
    joints, vertices = _posed_hand(crop_model, crop["pose"], (0, 0, 0))
    np.testing.assert_allclose((vertices - joints[0]).numpy(), crop["vertices"].numpy(), atol=1e-5)
    np.testing.assert_allclose((joints - joints[0]).numpy(), crop["joints_3d"].numpy(), atol=1e-5)


def test_flip_prob_mirrors_right_hands_into_labelled_left_crops():
    kp = _grid_keypoints()
    joints = np.random.default_rng(0).normal(scale=0.03, size=(21, 3)) + [0, 0, 0.5]
    raw = _raw(kp, joints=joints)
    torch.manual_seed(0)
    plain = _geometric_only(rotation_deg=0, scale_jitter=0, translation_jitter=0)(raw)
    torch.manual_seed(0)
    flipped = _geometric_only(rotation_deg=0, scale_jitter=0, translation_jitter=0, flip_prob=1.0)(raw)
    assert bool(flipped["is_left"]) and not bool(plain["is_left"])
    np.testing.assert_allclose(flipped["joints_3d"].numpy(), plain["joints_3d"].numpy() * [-1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(flipped["keypoints_2d"][:, 0], -plain["keypoints_2d"][:, 0], atol=1e-5)


def test_3d_rotation_about_z_matches_the_2d_rotation():
    # a nearly flat hand whose wrist is on the optical axis: its crop 2D and rotated 3D stay a
    # weak-perspective pair; rotating the 3D the other way round breaks that
    rng = np.random.default_rng(2)
    joints = rng.normal(scale=(0.03, 0.03, 0.003), size=(21, 3)) + [0, 0, 0.8]
    joints[0] = (0, 0, 0.8)
    uvw = joints @ np.array([[F_PX, 0, 120], [0, F_PX, 100], [0, 0, 1.0]]).T
    raw = _raw(uvw[:, :2] / uvw[:, 2:], joints=joints)
    centre, side = keypoint_box(raw["keypoints_2d"].numpy(), 1.5)

    def residual(kp2d, j3d):
        cam = camera_from_2d3d(kp2d[None], j3d[None])[0]
        return (cam[0] * j3d[:, :2] + cam[1:] - kp2d).abs().max().item()

    for angle in (0.7, 2.0, -2.5):
        crop = crop_sample(raw, 96, centre, side, angle, flip=False)
        c, s = math.cos(2 * angle), math.sin(2 * angle)
        wrong = crop["joints_3d"] @ torch.tensor([[c, s, 0], [-s, c, 0], [0, 0, 1.0]]).T   # rotated by -angle
        assert residual(crop["keypoints_2d"], crop["joints_3d"]) < 0.01 < 0.1 < residual(crop["keypoints_2d"], wrong)


def test_eval_output_normalisation_and_collate():
    kp = _grid_keypoints()
    raw = _raw(kp)
    crop = EvalTransform(64, margin=1.5)(raw)
    points = crop["keypoints_2d"].numpy()
    low, high = points.min(0), points.max(0)
    np.testing.assert_allclose((low + high) / 2, 0, atol=1e-5)                  # box centred
    assert abs((high - low).max() - 2 / 1.5) < 1e-5                             # longer side = 1/margin of the crop
    background = (90 / 255 - np.array(IMAGE_MEAN)) / np.array(IMAGE_STD)
    np.testing.assert_allclose(crop["image"][:, 5, 32].numpy(), background, atol=1e-5)
    shapes = {"image": (3, 64, 64), "mask": (64, 64), "keypoints_2d": (21, 2), "joints_3d": (21, 3),
              "vertices": (1609, 3), "pose": (16, 3), "betas": (10,), "is_left": (), "has_mask": (),
              "has_3d": (), "has_mesh": ()}
    assert {k: tuple(v.shape) for k, v in crop.items()} == shapes
    assert all(isinstance(v, torch.Tensor) for v in crop.values())
    assert crop["image"].dtype == crop["mask"].dtype == torch.float32 and crop["has_mask"].dtype == torch.bool
    torch.manual_seed(0)
    batch = default_collate([crop, TrainTransform(64)(raw), TrainTransform(64)(_raw(kp, is_left=True))])
    assert batch["image"].shape == (3, 3, 64, 64) and batch["has_mesh"].shape == (3,)


def test_crop_matrix_maps_the_box_onto_the_crop():
    m = crop_matrix(np.array([50.0, 40.0]), 20.0, 10, 0.0, False)
    corners = np.array([[40.0, 30.0], [60.0, 50.0]]) @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(corners, [[-0.5, -0.5], [9.5, 9.5]])


def test_background_replacement_and_occluders_change_only_what_they_should():
    torch.manual_seed(0)
    image = np.full((40, 50, 3), 200, np.uint8)
    mask = np.zeros((40, 50), np.uint8)
    mask[10:30, 10:30] = 1
    replaced = replace_background(image, mask, procedural_texture)
    assert (replaced[12:28, 12:28] == 200).all()                 # the hand (inside the feathered edge) is kept
    outside = np.ones((40, 50), bool)
    outside[8:32, 8:32] = False
    assert (replaced[outside] != 200).any(axis=-1).mean() > 0.9
    occluded = add_occluders(image)
    assert occluded.shape == image.shape and occluded.dtype == np.uint8 and (occluded != 200).any()
