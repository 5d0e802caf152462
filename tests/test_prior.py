"""The pose prior: anatomical frames, limits, score and sampler."""

import numpy as np
import torch

from core.hand_model import HandLayer, PosePrior
from core.hand_model.picture import named_pose
from core.hand_model.prior import anatomical_frames


def test_frames_are_orthonormal_and_flexion_curls_toward_the_palm(open_right):
    frames = anatomical_frames(open_right)
    np.testing.assert_allclose(frames.transpose(0, 2, 1) @ frames, np.tile(np.eye(3), (16, 1, 1)), atol=1e-5)
    prior = PosePrior(open_right)
    angles = torch.zeros(1, 16, 3)
    angles[0, [1, 4, 7, 10], 0] = 1.2           # flex each finger's knuckle by 1.2 rad
    out = HandLayer(open_right)(pose=prior.from_angles(angles))
    rest = HandLayer(open_right)()
    # fingertips (index, middle, ring, pinky) move toward the palm side (+z) and down (-y)
    for tip in (8, 12, 16, 20):
        moved = out.keypoints[0, tip] - rest.keypoints[0, tip]
        assert moved[2] > 0.03 and moved[1] < -0.02, (tip, moved)


def test_limits_zero_inside_positive_outside(open_right):
    prior = PosePrior(open_right)
    samples = prior.sample(500, torch.Generator().manual_seed(0))
    assert prior.limit_loss(samples).max() < 1e-8
    over = torch.zeros(1, 16, 3)
    over[0, 2, 0] = -1.0                          # index PIP bent backwards by 1 rad
    assert prior.limit_loss(prior.from_angles(over)).item() > 0.5


def test_score_prefers_samples_over_random_rotations(open_right):
    prior = PosePrior(open_right)
    natural = prior.score(prior.sample(200, torch.Generator().manual_seed(1)))
    random = prior.score(torch.randn(200, 16, 3, generator=torch.Generator().manual_seed(2)))
    assert natural.median() * 10 < random.median()
    pose = torch.randn(4, 16, 3, requires_grad=True)
    prior.score(pose).sum().backward()
    assert torch.isfinite(pose.grad).all()


def test_left_prior_mirrors_the_right(open_right, open_left):
    right, left = PosePrior(open_right), PosePrior(open_left)
    pose = right.sample(50, torch.Generator().manual_seed(4))
    mirrored = pose * torch.tensor([1.0, -1.0, -1.0])
    torch.testing.assert_close(left.angles(mirrored)[:, 1:], right.angles(pose)[:, 1:], atol=1e-5, rtol=0)
    torch.testing.assert_close(left.score(mirrored), right.score(pose), atol=1e-3, rtol=1e-4)


def test_fist_closes_the_hand_without_tearing(open_right):
    prior = PosePrior(open_right)
    layer = HandLayer(open_right)
    rest, fist = layer(), layer(pose=named_pose(prior, "fist"))
    kp = fist.keypoints[0]
    for tip in (8, 12, 16, 20):                  # fingertips end near the palm
        assert torch.linalg.norm(kp[tip] - kp[0]) < 0.11
    # no torn or exploding vertices: skin over the knuckles stretches by millimetres, not centimetres
    faces = torch.as_tensor(open_right.faces, dtype=torch.long)
    edges = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])

    def lengths(v):
        return torch.linalg.norm(v[..., edges[:, 0], :] - v[..., edges[:, 1], :], dim=-1)

    rest_lengths = lengths(rest.vertices[0])
    assert (lengths(fist.vertices[0]) - rest_lengths).max() < 0.010
    samples = layer(pose=prior.sample(200, torch.Generator().manual_seed(0)))
    assert (lengths(samples.vertices) - rest_lengths).max() < 0.020
    assert lengths(samples.vertices).max() < 1.5 * rest_lengths.max()


def vertex_normals(vertices: torch.Tensor, faces: np.ndarray) -> torch.Tensor:
    """(V, 3) unit area-weighted vertex normals of a posed mesh (outward for this model's winding)."""
    f = torch.as_tensor(faces, dtype=torch.long)
    tri = vertices[f]
    face_normals = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = torch.zeros_like(vertices).index_add_(0, f.reshape(-1), face_normals.repeat_interleave(3, 0))
    return normals / normals.norm(dim=1, keepdim=True)


def test_fist_closes_onto_the_palm_without_passing_through_it(open_right):
    """In the named fist (inside the limits) each finger's tip ends within 2.5 cm of the palm's
    skin, folded back past its knuckle, and the finger does not pass through the hand: of its
    distal segment's skin, pushed 1 mm outward, at most 10 % lies inside the posed hand
    (generalised winding number; touching skin, not a finger buried in the palm)."""
    from core.hand_model.joint_centres import winding_numbers
    from .test_skeleton import cut_loop

    prior, layer = PosePrior(open_right), HandLayer(open_right, torch.float64)
    pose = named_pose(prior, "fist")
    assert prior.limit_loss(pose).item() < 1e-6
    out = layer(pose=pose.double())
    vertices, kp = out.vertices[0], out.keypoints[0]
    normals = vertex_normals(vertices, open_right.faces)
    palm_ids = torch.nonzero(torch.as_tensor(open_right.weights[:, 0] > 0.9))[:, 0]
    cut = cut_loop(open_right.faces)
    for tip, mcp, distal in ((8, 5, 3), (12, 9, 6), (16, 13, 12), (20, 17, 9)):
        assert (kp[tip] - vertices[palm_ids]).norm(dim=1).min() < 0.025, tip
        assert (kp[tip] - kp[0]).norm() < (kp[mcp] - kp[0]).norm(), tip
        ids = np.nonzero(open_right.weights[:, distal] > 0.5)[0]
        pushed = (vertices[ids] + 0.001 * normals[ids]).numpy()
        inside = winding_numbers(pushed, vertices.numpy(), open_right.faces, cut) > 0.5
        assert inside.mean() < 0.10, (tip, inside.mean())


def test_pinch_brings_thumb_tip_to_index_tip(open_right, open_left):
    """The named pinch is inside the joint limits and closes thumb tip onto index tip (< 5 mm), on
    both sides."""
    for model in (open_right, open_left):
        prior = PosePrior(model)
        pose = named_pose(prior, "pinch")
        assert prior.limit_loss(pose).item() < 1e-6
        kp = HandLayer(model)(pose=pose).keypoints[0]
        assert (kp[4] - kp[8]).norm() < 0.005
