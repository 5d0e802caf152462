"""Which hand in one view is which hand in another: triangulation, matching, and the side of each hand.

A hand seen by several calibrated views has 21 landmarks in each; triangulated together (DLT, one
linear system per landmark), they reproject onto every view's landmarks only when they are the same
hand. The cost of putting hands together is the median reprojection error over landmarks and views,
each view's in units of its hand box side (so a small, distant view counts like a large one).
Groups grow view by view: view v's hands are assigned to the groups so far by the Hungarian method
(``scipy.optimize.linear_sum_assignment``), a pair costing more than MAX_COST not matched; a hand of
view v left over starts a group of its own (a hand that view 0 does not see still gets its group).
Side calls add a little (SIDE_COST times the probability that the sides differ): with two views, two
hands side by side along the epipolar lines can triangulate almost as well either way, and their
sides then tell them apart; a view that misreads a side is still matched by its geometry.

The side of a group is decided by all its views together: the sum over views of the log-odds that
the hand is a right one (each view's side confidence: the detector's, or the fit's where it decided).

Units: pixels, metres (the first view's frame, ``core.multiview.cameras``).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
from scipy.optimize import linear_sum_assignment

MAX_COST = 0.15            # median reprojection error, in hand box sides, above which two hands are not the same
SIDE_COST = 0.03          # box sides added to a pairing's cost times the probability that the two sides differ
SURE = 1e-3                # side confidences are clipped to [SURE, 1 - SURE] before their log-odds add up


@dataclasses.dataclass
class ViewHand:
    """One hand as one view sees it (that view's pixels; its estimate in that view's camera space)."""

    view: int
    keypoints_2d: np.ndarray            # (21, 2) landmarks (or the estimate's keypoints), pixels
    weights: np.ndarray                 # (21,) in [0, 1]: 1 for a detector's landmarks
    box_side: float                     # pixels: the longer side of the hand's box
    score: float                        # detection confidence in [0, 1]
    side: str                           # "right" | "left", this view's call
    side_confidence: float              # probability that ``side`` is right (core.engine.pipeline.HandEstimate)
    world: Optional[np.ndarray] = None  # (21, 3) 3D evidence in this view's camera axes (any origin, scale)
    estimate: object = None             # the single-view HandEstimate of this hand, or None
    from_landmarks: bool = True         # the 2D targets are a detector's landmarks (core.engine.fitting)


def projection_matrices(cameras) -> np.ndarray:
    """(V, 3, 4) K [R | t] of ``core.multiview.cameras.ViewCamera``s."""
    return np.stack([np.asarray(c.K, np.float64) @ np.concatenate([c.R, np.asarray(c.t)[:, None]], 1) for c in cameras])


def triangulate(P: np.ndarray, points: np.ndarray, weights: Optional[np.ndarray] = None) -> np.ndarray:
    """Linear (DLT) triangulation: P (V, 3, 4) projection matrices, points (V, K, 2) pixels, weights (V, K)
    (0: not seen) -> (K, 3) points in the frame the matrices map from. Each view adds the two rows
    x P_3 - P_1 and y P_3 - P_2, scaled by its weight; the point is the null vector (SVD)."""
    V, count = points.shape[:2]
    w = np.ones((V, count)) if weights is None else np.asarray(weights, np.float64)
    rows = np.stack([points[..., 0, None] * P[:, None, 2] - P[:, None, 0],
                     points[..., 1, None] * P[:, None, 2] - P[:, None, 1]], 2)          # (V, K, 2, 4)
    rows = rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12) * w[..., None, None]
    A = rows.transpose(1, 0, 2, 3).reshape(count, 2 * V, 4)
    X = np.linalg.svd(A)[2][:, -1]                                                   # (K, 4)
    return X[:, :3] / np.where(np.abs(X[:, 3:]) < 1e-12, 1e-12, X[:, 3:])


def reprojection_cost(P: np.ndarray, points: np.ndarray, box_sides: np.ndarray) -> tuple[float, np.ndarray]:
    """(median reprojection error in box sides over landmarks and views, the (K, 3) triangulated points)
    of one hand seen by V >= 2 views: P (V, 3, 4), points (V, K, 2) pixels, box_sides (V,) pixels.
    A point behind a camera costs infinity."""
    X = triangulate(P, points)
    uvw = np.einsum("vcd,kd->vkc", P, np.concatenate([X, np.ones((len(X), 1))], 1))
    if np.any(uvw[..., 2] <= 1e-6):
        return np.inf, X
    error = np.linalg.norm(uvw[..., :2] / uvw[..., 2:] - points, axis=-1) / np.asarray(box_sides)[:, None]
    return float(np.median(error)), X


def match_views(hands: list[list[ViewHand]], cameras, max_cost: float = MAX_COST) -> list[list[ViewHand]]:
    """Per view the hands it sees (``hands[v]``) and the V cameras -> groups of the same hand, each a list
    of ViewHands of distinct views, in view order (see the module docstring)."""
    P = projection_matrices(cameras)
    groups: list[list[ViewHand]] = []
    for v, found in enumerate(hands):
        if groups and found:
            cost = np.array([[reprojection_cost(P[[h.view for h in g] + [v]],
                                                np.stack([h.keypoints_2d for h in g] + [new.keypoints_2d]),
                                                np.array([h.box_side for h in g] + [new.box_side]))[0]
                              + SIDE_COST * side_disagreement(g, new) for new in found] for g in groups])
            rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e9))
            taken = set()
            for g, n in zip(rows, cols):
                if cost[g, n] <= max_cost:
                    groups[g].append(found[n])
                    taken.add(n)
            groups += [[h] for n, h in enumerate(found) if n not in taken]
        else:
            groups += [[h] for h in found]
    return groups


def right_probability(hands: list[ViewHand]) -> float:
    """P(right) of hands seen as one (their log-odds added)."""
    return 1.0 / (1.0 + np.exp(-np.clip(sum(right_log_odds(h) for h in hands), -50.0, 50.0)))


def side_disagreement(group: list[ViewHand], hand: ViewHand) -> float:
    """The probability that a group and a hand are of different sides, by their side calls."""
    a, b = right_probability(group), right_probability([hand])
    return float(a * (1.0 - b) + (1.0 - a) * b)


def right_log_odds(hand: ViewHand) -> float:
    """log P(right) / P(left) of one view's call."""
    p = float(np.clip(hand.side_confidence, SURE, 1.0 - SURE))
    p = p if hand.side == "right" else 1.0 - p
    return float(np.log(p / (1.0 - p)))


def group_side(group: list[ViewHand]) -> tuple[str, float]:
    """The side all views of a group decide together, and the probability that it is right."""
    right = right_probability(group)
    return ("right", float(right)) if right >= 0.5 else ("left", float(1.0 - right))
