"""The torch hand layer against an independent NumPy LBS, and its contract (shapes, sides, order)."""

import numpy as np
import pytest
import torch

from core.hand_model import HandLayer, KEYPOINT_NAMES
from core.hand_model.rotations import axis_angle_to_matrix, matrix_to_rot6d, mirror_axis_angle

from .conftest import numpy_lbs, random_hand_model


def random_inputs(batch, num_betas=10, seed=0, scale=0.6):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(batch, num_betas)), rng.normal(size=(batch, 16, 3)) * scale,
            rng.normal(size=(batch, 3)) * 0.1)


@pytest.mark.parametrize("which", ["toy_with_correctives", "open_right", "open_left"])
def test_layer_matches_numpy_lbs(which, request):
    model = random_hand_model() if which.startswith("toy") else request.getfixturevalue(which)
    betas, pose, transl = random_inputs(4)
    out = HandLayer(model, torch.float64)(torch.tensor(betas), torch.tensor(pose), torch.tensor(transl))
    for b in range(4):
        verts, joints = numpy_lbs(model, betas[b], pose[b], transl[b])
        np.testing.assert_allclose(out.vertices[b].numpy(), verts, atol=1e-10)
        np.testing.assert_allclose(out.joints[b].numpy(), joints, atol=1e-10)


def test_pose_formats_agree(open_right):
    layer = HandLayer(open_right, torch.float64)
    betas, pose, transl = (torch.tensor(a) for a in random_inputs(3))
    R = axis_angle_to_matrix(pose)
    ref = layer(betas, pose, transl).vertices
    np.testing.assert_allclose(layer(betas, R, transl, pose_format="matrix").vertices.numpy(), ref.numpy(), atol=1e-12)
    np.testing.assert_allclose(layer(betas, matrix_to_rot6d(R), transl, pose_format="rot6d").vertices.numpy(),
                               ref.numpy(), atol=1e-12)


def test_zero_pose_and_shape_give_the_template(open_right):
    out = HandLayer(open_right)(torch.zeros(2, 10), torch.zeros(2, 16, 3), torch.zeros(2, 3))
    np.testing.assert_allclose(out.vertices.numpy(), np.broadcast_to(open_right.v_template, (2,) + open_right.v_template.shape), atol=1e-6)
    np.testing.assert_allclose(out.joints[0].numpy(), open_right.joint_regressor @ open_right.v_template, atol=1e-6)
    np.testing.assert_allclose(out.joints[0, 0].numpy(), 0.0, atol=1e-3)  # wrist at the origin


def test_float32_float64_and_gradients_to_every_input(open_right):
    for dtype in (torch.float32, torch.float64):
        layer = HandLayer(open_right, dtype)
        betas, pose, transl = (torch.tensor(a, dtype=dtype, requires_grad=True) for a in random_inputs(2))
        out = layer(betas, pose, transl)
        assert out.vertices.dtype == dtype and out.vertices.shape == (2, open_right.num_vertices, 3)
        (out.vertices.square().sum() + out.keypoints.square().sum()).backward()
        for t in (betas, pose, transl):
            assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
    rot6d = torch.randn(2, 16, 6, requires_grad=True)
    HandLayer(open_right)(pose=rot6d, pose_format="rot6d").vertices.sum().backward()
    assert torch.isfinite(rot6d.grad).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu(open_right):
    betas, pose, transl = (torch.tensor(a, dtype=torch.float32) for a in random_inputs(8))
    cpu = HandLayer(open_right)(betas, pose, transl).vertices
    gpu = HandLayer(open_right).cuda()(betas.cuda(), pose.cuda(), transl.cuda()).vertices.cpu()
    np.testing.assert_allclose(gpu.numpy(), cpu.numpy(), atol=1e-5)


def test_left_hand_is_the_mirrored_right(open_right, open_left):
    flip = np.array([-1.0, 1.0, 1.0])
    np.testing.assert_array_equal(open_left.v_template, open_right.v_template * flip.astype(np.float32))
    np.testing.assert_array_equal(open_left.faces, open_right.faces[:, [2, 1, 0]])
    betas, pose, transl = (torch.tensor(a) for a in random_inputs(3))
    right = HandLayer(open_right, torch.float64)(betas, pose, transl)
    left = HandLayer(open_left, torch.float64)(betas, mirror_axis_angle(pose), transl * torch.tensor(flip))
    np.testing.assert_allclose(left.vertices.numpy(), right.vertices.numpy() * flip, atol=1e-10)
    np.testing.assert_allclose(left.keypoints.numpy(), right.keypoints.numpy() * flip, atol=1e-10)


def test_mirrored_pose_correctives():
    """Mirroring a model with correctives gives the mirror image for mirrored poses."""
    right = random_hand_model(seed=3)
    left = right.mirrored()
    flip = np.array([-1.0, 1.0, 1.0])
    betas, pose, transl = random_inputs(2, seed=4)
    for b in range(2):
        v_right, _ = numpy_lbs(right, betas[b], pose[b], transl[b])
        v_left, _ = numpy_lbs(left, betas[b], pose[b] * np.array([1, -1, -1]), transl[b] * flip)
        np.testing.assert_allclose(v_left, v_right * flip, atol=1e-6)


def test_keypoint_order_is_freihand(open_right):
    assert KEYPOINT_NAMES == ("wrist", "thumb1", "thumb2", "thumb3", "thumb4", "index1", "index2", "index3", "index4",
                              "middle1", "middle2", "middle3", "middle4", "ring1", "ring2", "ring3", "ring4",
                              "pinky1", "pinky2", "pinky3", "pinky4")
    out = HandLayer(open_right)(pose=torch.randn(1, 16, 3) * 0.3)
    kp, joints, verts = out.keypoints[0], out.joints[0], out.vertices[0]
    # the index list from ENVIRONMENT.md, written out independently
    for k, src in enumerate([0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20]):
        expected = joints[src] if src < 16 else verts[open_right.tip_vertex_ids[src - 16]]
        assert torch.equal(kp[k], expected)


def test_keypoints_are_anatomically_placed(open_right):
    """Rest hand: fingers along +y, thumb on +x, tips beyond their last joints, lengths plausible."""
    kp = HandLayer(open_right)().keypoints[0].numpy()
    fingers = {"thumb": kp[1:5], "index": kp[5:9], "middle": kp[9:13], "ring": kp[13:17], "pinky": kp[17:21]}
    for name, chain in fingers.items():
        bones = np.linalg.norm(np.diff(chain, axis=0), axis=1)
        assert np.all(bones > 0.012) and np.all(bones < 0.07), (name, bones)
    assert kp[12, 1] > kp[9, 1] > 0.07  # middle tip above its knuckle, knuckle well above the wrist
    length = np.linalg.norm(kp[12] - kp[0])
    assert 0.15 < length < 0.22, length
    assert fingers["thumb"][:, 0].mean() > fingers["index"][:, 0].mean() > fingers["pinky"][:, 0].mean()


def test_joint_regression_follows_shape_changes(open_right):
    """Held-out anny hands (not used to fit anything) with their joint centres as the build placed
    them: the regressor recovers those joints from the mesh alone, and so does the layer from fitted betas."""
    from core.hand_model.model import OPEN_HAND_PATH
    with np.load(OPEN_HAND_PATH) as z:
        verts, joints = z["heldout_rest_vertices"].astype(np.float64), z["heldout_joints"].astype(np.float64)
    regressed = np.einsum("jv,nvc->njc", open_right.joint_regressor.astype(np.float64), verts)
    errors_mm = 1000 * np.linalg.norm(regressed - joints, axis=-1)
    assert errors_mm.mean() < 1.0 and errors_mm.max() < 4.0, errors_mm.max()
    # betas by least squares on the shape basis, then the layer's rest joints
    basis = open_right.shapedirs.reshape(-1, open_right.num_betas).astype(np.float64)
    betas = np.linalg.lstsq(basis, (verts - open_right.v_template).reshape(len(verts), -1).T, rcond=None)[0].T
    assert np.abs(betas[:, 0]).max() > 1.0  # the set includes clearly non-average hands
    out = HandLayer(open_right, torch.float64)(torch.tensor(betas))
    layer_errors_mm = 1000 * np.linalg.norm(out.rest_joints.numpy() - joints, axis=-1)
    assert layer_errors_mm.mean() < 1.5, layer_errors_mm.mean()
    # the template's own joints, by contrast, are centimetres off for the extreme hands
    template_errors_mm = 1000 * np.linalg.norm(open_right.joint_regressor @ open_right.v_template - joints, axis=-1)
    assert template_errors_mm.max() > 10.0


def test_keypoints_only_matches_the_full_forward(open_right):
    layer = HandLayer(open_right)
    pose = torch.randn(3, 16, 3) * 0.4
    betas, transl = torch.randn(3, 10), torch.randn(3, 3)
    full = layer(betas, pose, transl)
    fast = layer(betas, pose, transl, keypoints_only=True)
    assert fast.vertices is None
    torch.testing.assert_close(fast.keypoints, full.keypoints)
    torch.testing.assert_close(fast.joints, full.joints)


def test_keypoints_only_matches_with_pose_correctives():
    """The precomputed joint/tip shape directions and tip correctives of keypoints_only (a model with
    posedirs, float64) give the full forward's keypoints and rest joints."""
    layer = HandLayer(random_hand_model(seed=3, correctives=True), torch.float64)
    pose = torch.randn(4, 16, 3, dtype=torch.float64) * 0.5
    betas, transl = torch.randn(4, 10, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    full = layer(betas, pose, transl)
    fast = layer(betas, pose, transl, keypoints_only=True)
    assert fast.vertices is None and fast.rest_vertices is None
    torch.testing.assert_close(fast.keypoints, full.keypoints)
    torch.testing.assert_close(fast.rest_joints, full.rest_joints)
