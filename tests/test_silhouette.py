"""The soft silhouette rasteriser: hard limit matches OpenCV, gradients pull a mesh onto a mask."""

import cv2
import numpy as np
import pytest
import torch

from core.hand_model import HandLayer, PosePrior
from training.silhouette import edge_neighbours, normalized_to_pixels, soft_silhouette


@pytest.fixture(scope="module")
def hands(open_right):
    """(layer, (4, V, 2) projected hands in [-1, 1] crop coordinates)."""
    layer = HandLayer(open_right)
    pose = PosePrior(open_right).sample(4, torch.Generator().manual_seed(0), global_orient=True)
    with torch.no_grad():
        out = layer(pose=pose)
    return layer, (out.vertices - out.keypoints[:, :1])[..., :2] / 0.15


def _reference(triangles: np.ndarray, size: int, supersample: int = 8) -> np.ndarray:
    """Pixel centres covered by any triangle: cv2.fillConvexPoly per triangle on a finer grid (sampled
    at the pixel centres), so that OpenCV's outline pixels do not inflate the result."""
    fine = np.zeros((size * supersample, size * supersample), np.uint8)
    fixed = (((triangles + 0.5) * supersample - 0.5) * 16).round().astype(np.int32)   # 4 fractional bits
    for triangle in fixed:
        cv2.fillConvexPoly(fine, triangle, 1, lineType=cv2.LINE_8, shift=4)
    return fine[supersample // 2::supersample, supersample // 2::supersample] > 0


def _iou(a, b):
    return float((a & b).sum() / (a | b).sum())


def test_hard_limit_matches_opencv(hands):
    layer, uv = hands
    size = 64
    points = normalized_to_pixels(uv, size)
    hard = soft_silhouette(points, layer.faces, size, sigma=0.01) > 0.5
    faces = layer.faces.numpy()
    for b in range(len(uv)):
        assert _iou(hard[b].numpy(), _reference(points[b].numpy()[faces], size)) > 0.95


def test_soft_outline_is_not_dilated_and_inside_is_one(hands):
    layer, uv = hands
    points = normalized_to_pixels(uv, 64)
    hard = soft_silhouette(points, layer.faces, 64, sigma=0.01)
    soft = soft_silhouette(points, layer.faces, 64, sigma=0.5)
    assert _iou(soft.numpy() > 0.5, hard.numpy() > 0.5) > 0.99
    assert abs(float(soft.sum() / hard.sum()) - 1) < 0.05
    eroded = torch.from_numpy(cv2.erode(hard[0].numpy(), np.ones((7, 7), np.uint8)) > 0.5)   # > 3 px inside
    assert (soft[0][eroded] == 1).all() and (soft[0][hard[0] < 0.5] < 0.5).all()


def test_gradients_move_the_mesh_onto_the_mask(hands):
    layer, uv = hands
    uv, size = uv[:1], 48
    true_shift, true_scale = torch.tensor([0.12, -0.08]), 1.15
    target = (soft_silhouette(normalized_to_pixels(uv * true_scale + true_shift, size), layer.faces, size,
                              sigma=0.01) > 0.5).float()
    shift = torch.zeros(2, requires_grad=True)
    log_scale = torch.zeros((), requires_grad=True)
    optimiser = torch.optim.Adam([shift, log_scale], lr=0.02)

    def render(sigma=0.5):
        return soft_silhouette(normalized_to_pixels(uv * log_scale.exp() + shift, size), layer.faces, size, sigma=sigma)

    with torch.no_grad():
        before = _iou(render(0.01)[0].numpy() > 0.5, target[0].numpy() > 0.5)
    for _ in range(50):
        loss = (render() - target).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        after = _iou(render(0.01)[0].numpy() > 0.5, target[0].numpy() > 0.5)
    assert before < 0.7 and after > 0.9, (before, after)
    assert (shift.detach() - true_shift).abs().max() < 0.03          # < 0.75 px of the 48 px raster
    assert abs(log_scale.exp().item() - true_scale) < 0.06


def _square(x0, y0, side):
    return [[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side]]


def test_profile_is_a_sigmoid_of_the_distance_to_the_outline_and_folds_do_not_count():
    # a big square with a small square inside it (both facing the same way): the small one's edges
    # are covered on both sides, so they are not outline
    points = torch.tensor([_square(4.0, 4.0, 20.0) + _square(10.0, 10.0, 4.0)])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    sigma, cutoff = 1.0, 5.0
    sil = soft_silhouette(points, faces, 32, sigma=sigma, cutoff=cutoff)[0]
    low = 1 / (1 + np.exp(cutoff))
    for x, signed in ((4, 0.0), (5, 1.0), (6, 2.0), (3, -1.0), (2, -2.0), (0, -4.0)):
        expected = (1 / (1 + np.exp(-signed / sigma)) - low) / (1 - 2 * low)
        assert float(sil[16, x]) == pytest.approx(expected, abs=1e-5), x
    assert (sil[9:16, 9:16] == 1).all()                          # around the inner square's edges
    assert float(sil[16, 30]) == 0                               # beyond the soft band


def test_edge_neighbours_and_finite_gradients_on_degenerate_triangles():
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [2, 4, 3]])
    np.testing.assert_array_equal(edge_neighbours(faces).numpy(), [[-1, -1, 1], [0, 2, -1], [-1, -1, 1]])
    mesh = torch.tensor([[[5.0, 5.0], [5.0, 5.0], [9.0, 9.0], [7.0, 7.0], [3.0, 8.0]]], requires_grad=True)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [2, 3, 4]])                 # a point, a segment, a real triangle
    sil = soft_silhouette(mesh.double(), faces, 16, sigma=0.5)
    assert sil.dtype == torch.float64 and ((sil >= 0) & (sil <= 1)).all() and sil.sum() > 1
    sil.sum().backward()
    assert torch.isfinite(mesh.grad).all() and mesh.grad.abs().sum() > 0
def test_off_image_and_empty_inputs():
    far = torch.tensor([[[-50.0, -50.0], [-40.0, -50.0], [-50.0, -40.0]]])
    faces = torch.tensor([[0, 1, 2]])
    assert soft_silhouette(far, faces, 8).abs().max() == 0
    huge = torch.tensor([[[-100.0, -100.0], [300.0, -100.0], [-100.0, 300.0]]])
    assert (soft_silhouette(huge, faces, 8) > 0.99).all()
