"""The add-on's numpy side (no bpy needed): rotations, bone geometry, camera settings, names."""

from __future__ import annotations

import numpy as np

from blender_addon import camera_math, naming, rig_math
from tests.reference_lbs import rodrigues
from tests.test_blender_support import MANO_JOINTS, MANO_PARENTS, toy_rest


def quat_to_matrix(q):
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1).reshape(q.shape[:-1] + (3, 3))


def random_rotations(n, rng):
    q, r = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    q *= np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    q[np.linalg.det(q) < 0, :, 0] *= -1
    return q


def test_axis_angle_conversions_agree():
    rng = np.random.default_rng(0)
    aa = np.concatenate([rng.normal(size=(50, 3)) * 2, np.zeros((1, 3)), 1e-9 * rng.normal(size=(3, 3))])
    np.testing.assert_allclose(rig_math.axis_angle_to_matrix(aa), rodrigues(aa), atol=1e-12)
    q = rig_math.axis_angle_to_quaternion(aa)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1, atol=1e-12)
    np.testing.assert_allclose(quat_to_matrix(q), rodrigues(aa), atol=1e-12)


def test_hemisphere_alignment_keeps_rotations_and_neighbours_close():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(200, 3, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    q = np.cumsum(q * 0.05, axis=0) + q[:1]
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    flipped = q * rng.choice([-1.0, 1.0], size=(200, 3, 1))
    out = rig_math.align_hemisphere(flipped)
    assert (np.sum(out[1:] * out[:-1], -1) >= 0).all()
    np.testing.assert_allclose(np.abs(np.sum(out * q, -1)), 1, atol=1e-12)   # same rotations


def test_basis_quaternion_is_rotation_in_the_bone_frame():
    rng = np.random.default_rng(2)
    b = random_rotations(16, rng)
    pose = rng.normal(size=(4, 16, 3))
    q = rig_math.basis_quaternions(pose, b)
    want = np.einsum("jab,njbc,jcd->njad", b.transpose(0, 2, 1), rodrigues(pose), b)   # b^T R b
    np.testing.assert_allclose(quat_to_matrix(q), want, atol=1e-10)
    np.testing.assert_allclose(rig_math.root_locations(pose[:, 0], b[0]), pose[:, 0] @ b[0], atol=1e-12)


def test_corrective_features_are_r_minus_identity():
    pose = np.random.default_rng(3).normal(size=(2, 16, 3))
    f = rig_math.corrective_features(pose)
    assert f.shape == (2, 135)
    np.testing.assert_allclose(f[1, 9:18], (rodrigues(pose[1, 2]) - np.eye(3)).ravel(), atol=1e-12)


def test_bone_axes_curl_toward_the_palm_for_both_sides():
    for side in ("right", "left"):
        verts, _, _, weights, joints = toy_rest(side)
        tails = rig_math.bone_tails(joints, MANO_PARENTS, verts, weights)
        palm = rig_math.palm_normal(joints, side, mano=True)
        np.testing.assert_allclose(palm, [0, 0, 1], atol=0.2)        # the toy's palm faces +z
        z = rig_math.bone_z_axes(joints, tails, palm)
        y = (tails - joints) / np.linalg.norm(tails - joints, axis=1, keepdims=True)
        np.testing.assert_allclose(np.sum(z * y, 1), 0, atol=1e-9)
        x = np.cross(y, z)                                            # curl axis
        curled = np.einsum("jab,jb->ja", rodrigues(0.3 * x), y)      # rotate +0.3 rad about X
        assert (np.sum((curled - y) * palm, 1) > 0).all()


def test_camera_settings_from_intrinsics():
    s = camera_math.camera_settings(np.array([[500.0, 0, 319.5], [0, 500, 239.5], [0, 0, 1]]), (640, 480))
    assert s.shift_x == 0 and s.shift_y == 0 and s.pixel_aspect == (1.0, 1.0)
    assert s.lens_mm == 500 * 36 / 640 and s.resolution == (640, 480)
    s = camera_math.camera_settings(np.array([[500.0, 0, 100], [0, 550, 300], [0, 0, 1]]), (400, 600))
    assert s.pixel_aspect[0] >= 1 and s.pixel_aspect[1] >= 1 and s.shift_x > 0 and s.shift_y > 0
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    np.testing.assert_allclose(camera_math.project(K, [[0.1, -0.2, 2.0]]), [[345, 190]])


def test_names():
    assert naming.bone_names(MANO_JOINTS, MANO_PARENTS, "left")[:4] == [
        "hand.L", "f_index.01.L", "f_index.02.L", "f_index.03.L"]
    assert naming.bone_names(["root", "tip"], [-1, 0], "right") == ["root.R", "tip.R"]
    keys = naming.corrective_names(naming.bone_names(MANO_JOINTS, MANO_PARENTS, "right"))
    assert len(keys) == len(set(keys)) == 135 and keys[0] == "pc.f_index.01.R.00"
    assert naming.capture_title("/videos/take 3.mp4") == "take 3"
    assert naming.capture_title("", "/x/cap.npz") == "cap"
    assert naming.capture_title("", "") == "Hand Capture"
