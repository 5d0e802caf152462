"""Skinning weights around the anatomical joint centres (build time, numpy only).

MPFB's weights bend each finger where its rig bends it (at the web), not at the joint centres of
``joint_centres.py``. Rotating a finger about its real MCP centre with those weights drags the
1-2 cm of palm between the knuckle and the web along a sharp seam. So the weights are re-derived,
in two parts:

- Which ray a vertex belongs to (wrist, thumb, index, middle, ring, pinky) is MPFB's: the sum of
  its weights on that ray's bones (metacarpal + phalanges). The artists' painting of the palm
  into rays and of the webs between fingers is kept, soft borders included.
- Where along the ray it bends is anatomy's: across each joint of the ray a smooth step, centred
  on the plane through the joint centre that bisects the two bones meeting there, hands the
  vertex from the parent bone to the child bone over a half width proportional to the child bone.
  Chain weights: parent 1 - s1, bone 1 s1 (1 - s2), bone 2 s1 s2 (1 - s3), bone 3 s1 s2 s3.

Rows sum to 1 (memberships sum to 1 and each chain sums to 1), all weights are non-negative.
"""

from __future__ import annotations

import re

import numpy as np

RAYS = ("wrist", "thumb", "index", "middle", "ring", "pinky")
RAY_JOINTS = {"thumb": (13, 14, 15), "index": (1, 2, 3), "middle": (4, 5, 6), "ring": (10, 11, 12), "pinky": (7, 8, 9)}
TIP_INDEX = {"thumb": 0, "index": 1, "middle": 2, "ring": 3, "pinky": 4}
# Half width of the blend across each joint of a ray, as a fraction of the bone distal of it
# (MCP / CMC, PIP / thumb MCP, DIP / IP).
BLEND_FRACTION = (0.30, 0.25, 0.25)
MPFB_RAY_OF_FINGER = {1: "thumb", 2: "index", 3: "middle", 4: "ring", 5: "pinky"}
MPFB_RAY_OF_METACARPAL = {1: "index", 2: "middle", 3: "ring", 4: "pinky"}


def ray_of_bone(bone: str) -> str:
    """MPFB bone name -> ray: fingerN-k and metacarpalN by number, anything else the wrist."""
    finger = re.fullmatch(r"finger(\d)-\d\.R", bone)
    if finger:
        return MPFB_RAY_OF_FINGER[int(finger[1])]
    metacarpal = re.fullmatch(r"metacarpal(\d)\.R", bone)
    if metacarpal:
        return MPFB_RAY_OF_METACARPAL[int(metacarpal[1])]
    return "wrist"


def ray_membership(bone_weights: dict, base_ids: np.ndarray) -> np.ndarray:
    """(V, 6) membership in RAYS from MPFB's ``weights.default.json`` weights (bone -> [[base.obj
    vertex, weight], ...]); ``base_ids`` (V,) the base.obj ids of the hand's vertices. Rows sum to 1;
    a vertex with no weight belongs to the wrist."""
    row_of = {int(b): i for i, b in enumerate(base_ids)}
    member = np.zeros((len(base_ids), len(RAYS)))
    for bone, pairs in bone_weights.items():
        column = RAYS.index(ray_of_bone(bone))
        for vertex, w in pairs:
            if vertex in row_of:
                member[row_of[vertex], column] += w
    member[member.sum(1) == 0, 0] = 1.0
    return member / member.sum(1, keepdims=True)


def smooth_step(x: np.ndarray) -> np.ndarray:
    """0 for x <= -1, 1 for x >= 1, C1-smooth (cubic) in between."""
    t = np.clip(0.5 + 0.5 * x, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def anatomical_weights(template: np.ndarray, joints: np.ndarray, tips: np.ndarray, member: np.ndarray) -> np.ndarray:
    """(V, 16) skinning weights for the rest mesh ``template`` (V, 3) with joint centres ``joints``
    (16, 3), fingertip vertices ``tips`` (5,) and ray membership ``member`` (V, 6)."""
    weights = np.zeros((len(template), len(joints)))
    weights[:, 0] = member[:, 0]
    for ray, chain in RAY_JOINTS.items():
        points = [joints[0]] + [joints[j] for j in chain] + [template[tips[TIP_INDEX[ray]]]]
        remaining = np.ones(len(template))                  # product of the steps passed so far
        for k, joint in enumerate(chain):
            before, here, after = points[k], points[k + 1], points[k + 2]
            normal = unit(unit(here - before) + unit(after - here))
            half_width = BLEND_FRACTION[k] * np.linalg.norm(after - here)
            step = smooth_step((template - here) @ normal / half_width)
            parent = 0 if k == 0 else chain[k - 1]
            weights[:, parent] += member[:, RAYS.index(ray)] * remaining * (1.0 - step)
            remaining = remaining * step
        weights[:, chain[-1]] += member[:, RAYS.index(ray)] * remaining
    return weights
