"""core.hand_model.landmark_points and training.landmark_calibration: landmark points ride on the
right bones, and the calibration finds offsets it is shown, checked against independent geometry."""

from __future__ import annotations

import numpy as np
import torch
import cv2

from core.hand_model import HandLayer, PosePrior
from core.hand_model.landmark_points import (attached_joints, attachment_matrix, hand_scale, landmark_points,
                                             load_offsets)
from core.hand_model.model import KEYPOINT_NAMES
from training.landmark_calibration import fit_offsets


def random_turns(count: int, seed: int) -> torch.Tensor:
    """(count, 3) axis-angle: random axes, angles up to pi."""
    rng = np.random.default_rng(seed)
    axes = rng.normal(size=(count, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    return torch.as_tensor(axes * rng.uniform(0, np.pi, size=(count, 1)))


def points_of(layer, betas, pose, offsets, length):
    out = layer(betas, pose, keypoints_only=True)
    return out, landmark_points(out.keypoints, out.world_rotations, hand_scale(out.rest_joints, length),
                                offsets, attachment_matrix().double())


def test_attachments_name_the_bones_a_landmark_rides_on():
    assert KEYPOINT_NAMES[0] == "wrist" and attached_joints(0) == (0,)
    assert KEYPOINT_NAMES[1] == "thumb1" and attached_joints(1) == (13,)                # the thumb's metacarpal
    assert KEYPOINT_NAMES[5] == "index1" and attached_joints(5) == (0, 1)              # palm and proximal phalanx
    assert KEYPOINT_NAMES[8] == "index4" and attached_joints(8) == (3,)                # the distal phalanx
    assert torch.allclose(attachment_matrix().sum(1), torch.ones(21))


def test_a_fingertip_offset_turns_with_its_distal_phalanx(open_right):
    """Bend only the index DIP by 90 degrees: the index tip's offset turns by that rotation about the
    DIP's axis (OpenCV's Rodrigues), the wrist's offset does not move, and a rest hand gets keypoints + offsets."""
    layer = HandLayer(open_right, torch.float64)
    offsets = torch.zeros(21, 3, dtype=torch.float64)
    offsets[8] = torch.tensor([0.0, -0.006, -0.004], dtype=torch.float64)      # inside the index pad
    offsets[0] = torch.tensor([0.0, -0.01, 0.0], dtype=torch.float64)
    betas = torch.zeros(1, 10, dtype=torch.float64)
    rest = layer(betas).rest_joints
    length = float((rest[0, 4] - rest[0, 0]).norm())
    out, rest_points = points_of(layer, betas, None, offsets, length)
    assert torch.allclose(rest_points - out.keypoints, offsets[None], atol=1e-12)
    pose = torch.zeros(1, 16, 3, dtype=torch.float64)
    pose[0, 3] = torch.tensor([np.pi / 2, 0.0, 0.0], dtype=torch.float64)      # index3 (DIP) about x
    bent, bent_points = points_of(layer, betas, pose, offsets, length)
    expected = cv2.Rodrigues(np.array([np.pi / 2, 0.0, 0.0]))[0] @ offsets[8].numpy()
    assert np.allclose((bent_points - bent.keypoints)[0, 8].numpy(), expected, atol=1e-12)
    assert torch.allclose(bent_points[0, 0] - bent.keypoints[0, 0], offsets[0], atol=1e-12)


def test_calibration_recovers_offsets_from_noisy_views(open_right):
    """Landmarks made by hand from known offsets (each rotated by its bones' world rotations, which
    the layer reports, then projected with a pinhole camera) plus pixel noise and a few outright
    misses: the fit finds the offsets to a fraction of a millimetre."""
    rng = np.random.default_rng(3)
    layer = HandLayer(open_right, torch.float64)
    count = 300
    pose = PosePrior(open_right).sample(count).double()
    pose[:, 0] = random_turns(count, 4)
    betas = torch.as_tensor(rng.normal(size=(count, 10)) * 0.5)
    out = layer(betas, pose, keypoints_only=True)
    length = float((layer(torch.zeros(1, 10, dtype=torch.float64)).rest_joints[0, 4]
                    - layer(torch.zeros(1, 10, dtype=torch.float64)).rest_joints[0, 0]).norm())
    true_offsets = rng.normal(scale=0.006, size=(21, 3))
    true_offsets[1] = [0.004, 0.018, 0.002]                                   # up the thumb's metacarpal
    scale = hand_scale(out.rest_joints, length).numpy()
    world = out.world_rotations.numpy()
    landmarks_3d = out.keypoints.numpy().copy()
    for k in range(21):
        joints = attached_joints(k)
        turn = sum(world[:, j] for j in joints) / len(joints)                   # (N, 3, 3)
        landmarks_3d[:, k] += scale[:, None] * np.einsum("nij,j->ni", turn, true_offsets[k])
    transl = np.stack([rng.uniform(-0.05, 0.05, count), rng.uniform(-0.05, 0.05, count), rng.uniform(0.35, 0.6, count)], 1)
    K = np.array([[600.0, 0, 112], [0, 600.0, 112], [0, 0, 1]])
    pixels = (landmarks_3d + transl[:, None]) @ K.T
    pixels = pixels[..., :2] / pixels[..., 2:]
    pixels += rng.normal(scale=1.0, size=pixels.shape)
    misses = rng.random(pixels.shape[:2]) < 0.05
    pixels[misses] += rng.normal(scale=40.0, size=(misses.sum(), 2))
    data = {"landmarks": pixels, "K": np.repeat(K[None], count, 0),
            "keypoints_3d": out.keypoints.numpy() + transl[:, None], "pose": pose.numpy(), "betas": betas.numpy()}
    found, _ = fit_offsets(data, layer, length, steps=600)
    error_mm = 1000 * np.linalg.norm(found - true_offsets, axis=1)
    assert error_mm.max() < 1.0, error_mm.round(2)


def test_shipped_offsets_are_millimetres_a_hand_can_have():
    offsets, length = load_offsets()
    assert offsets.shape == (21, 3) and 0.07 < length < 0.11
    assert np.abs(offsets).max() < 0.03              # none further than 3 cm from its keypoint


def test_left_hand_landmark_points_are_the_mirrored_right_ones(open_right, open_left):
    """A left hand in the mirrored pose is the right hand mirrored in x, and so are its landmark
    points (the capture's keypoints, from core.capture.track_from_layer)."""
    from core.capture import track_from_layer
    from core.hand_model.rotations import mirror_axis_angle
    torch.manual_seed(2)
    pose = PosePrior(open_right).sample(4).double()
    pose[:, 0] = random_turns(4, 5)
    betas = np.random.default_rng(6).normal(size=10) * 0.5
    transl = np.array([[0.02, -0.01, 0.5]] * 4)
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    right = track_from_layer(HandLayer(open_right, torch.float64), betas, pose.numpy(), transl, K)
    mirrored_transl = transl * np.array([-1.0, 1.0, 1.0])
    left = track_from_layer(HandLayer(open_left, torch.float64), betas, mirror_axis_angle(pose).numpy(),
                            mirrored_transl, K)
    np.testing.assert_allclose(left.joints_3d, right.joints_3d * np.array([-1.0, 1.0, 1.0]), atol=1e-6)
    # and they are landmark points, not the joint centres: the thumb base sits off the CMC joint
    joints = HandLayer(open_right, torch.float64)(torch.as_tensor(betas[None]).expand(4, -1), pose,
                                                  torch.as_tensor(transl)).keypoints.numpy()
    offsets, _ = load_offsets()
    moved = np.linalg.norm(right.joints_3d[:, 1] - joints[:, 1], axis=-1)
    assert (moved > 0.5 * np.linalg.norm(offsets[1])).all()
