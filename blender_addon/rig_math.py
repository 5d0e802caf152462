"""Bone geometry and pose conversion for the hand rig, in numpy (no bpy).

Small named helpers in the spirit of Rigify's bone utilities. Everything is in the
armature's own space, which is the capture's camera space (OpenCV: x right, y down,
z forward, metres); the armature *object* carries ``CV_TO_BLENDER`` to Blender's world.

Pose conversion (see capture_format's docstring for the LBS it reproduces): a Blender bone
with rest rotation ``b`` (3x3, columns = bone X, Y, Z in armature space) and pose basis
rotation ``L`` deforms like the capture's relative rotation ``R`` when ``L = b^T R b``.
For axis-angle that is just the axis-angle vector expressed in the bone's frame:
``aa_basis = b^T aa``. The root bone's location is ``b_0^T transl``.
"""

from __future__ import annotations

import numpy as np

# world (Blender: z up, camera looking down -z) = CV_TO_BLENDER @ camera space (OpenCV).
# A rotation of 180 degrees about x, so the armature object's rotation_euler is (pi, 0, 0).
CV_TO_BLENDER = np.diag([1.0, -1.0, -1.0])
CV_TO_BLENDER_EULER = (np.pi, 0.0, 0.0)


def _unit(v: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Vectors (..., 3) scaled to unit length (zero vectors stay zero)."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, eps)


def axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    """Rodrigues: axis-angle (..., 3) radians -> rotation matrices (..., 3, 3), float64."""
    aa = np.asarray(aa, np.float64)
    theta = np.linalg.norm(aa, axis=-1)[..., None, None]
    k = aa / np.maximum(theta[..., 0], 1e-12)
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    zero = np.zeros_like(kx)
    K = np.stack([zero, -kz, ky, kz, zero, -kx, -ky, kx, zero], -1).reshape(aa.shape[:-1] + (3, 3))
    eye = np.broadcast_to(np.eye(3), K.shape)
    return eye + np.sin(theta) * K + (1.0 - np.cos(theta)) * (K @ K)


def axis_angle_to_quaternion(aa: np.ndarray) -> np.ndarray:
    """Axis-angle (..., 3) radians -> unit quaternions (..., 4) as (w, x, y, z), float64."""
    aa = np.asarray(aa, np.float64)
    theta = np.linalg.norm(aa, axis=-1, keepdims=True)
    half = 0.5 * theta
    # sin(theta/2)/theta, with its limit 1/2 - theta^2/48 near zero.
    small = theta < 1e-6
    scale = np.where(small, 0.5 - theta**2 / 48.0, np.sin(half) / np.where(small, 1.0, theta))
    return np.concatenate([np.cos(half), aa * scale], axis=-1)


def align_hemisphere(quats: np.ndarray) -> np.ndarray:
    """Flip quaternions (N, ..., 4) along axis 0 so consecutive ones have a non-negative dot.

    q and -q are the same rotation, but interpolating between keys on opposite sides takes
    the long way round; this keeps each channel's keys in one hemisphere.
    """
    q = np.array(quats, np.float64, copy=True)
    if q.shape[0] < 2:
        return q
    dots = np.sum(q[1:] * q[:-1], axis=-1)
    step = np.where(dots < 0.0, -1.0, 1.0)
    sign = np.concatenate([np.ones_like(step[:1]), np.cumprod(step, axis=0)], axis=0)
    return q * sign[..., None]


def corrective_features(pose: np.ndarray) -> np.ndarray:
    """Pose-corrective weights (N, (J-1)*9): ``R_j - I`` for joints 1..J-1, row-major."""
    R = axis_angle_to_matrix(pose)[:, 1:]
    return (R - np.eye(3)).reshape(pose.shape[0], -1)


# --- bone geometry ----------------------------------------------------------------------

def children_of(parents) -> list:
    """For each joint, the list of its child joints."""
    kids = [[] for _ in parents]
    for j, p in enumerate(parents):
        if p >= 0:
            kids[int(p)].append(j)
    return kids


def palm_normal(rest_joints: np.ndarray, side: str, mano: bool) -> np.ndarray:
    """Unit vector (3,) from the back of the hand toward the palm side, in armature space.

    For MANO skeletons it is ``(index1 - wrist) x (pinky1 - wrist)``, negated for a left
    hand (stored mirrored, so the cross product flips); otherwise the canonical +z.
    """
    if not mano:
        return np.array([0.0, 0.0, 1.0])
    j = np.asarray(rest_joints, np.float64)
    n = np.cross(j[1] - j[0], j[7] - j[0])
    if side == "left":
        n = -n
    if np.linalg.norm(n) < 1e-9:
        return np.array([0.0, 0.0, 1.0])
    return _unit(n)


def bone_tails(rest_joints: np.ndarray, parents, rest_vertices: np.ndarray,
               skin_weights: np.ndarray) -> np.ndarray:
    """Tail positions (J, 3): toward the child joint.

    * one child: the child's joint;
    * several children (the wrist): the child whose direction is closest to the mean
      direction of all children (the middle finger for a hand);
    * no child (finger tips): continue the parent's direction up to the farthest vertex the
      bone mostly drives, clamped to [0.5, 1.5] times the parent bone's length.
    """
    joints = np.asarray(rest_joints, np.float64)
    verts = np.asarray(rest_vertices, np.float64)
    dominant = np.argmax(skin_weights, axis=1)
    kids = children_of(parents)
    tails = np.empty_like(joints)
    for j in range(len(joints)):
        if len(kids[j]) == 1:
            tails[j] = joints[kids[j][0]]
        elif kids[j]:
            dirs = _unit(joints[kids[j]] - joints[j])
            best = int(np.argmax(dirs @ _unit(dirs.mean(axis=0))))
            tails[j] = joints[kids[j][best]]
    for j in range(len(joints)):
        if kids[j]:
            continue
        p = int(parents[j])
        if p < 0:
            tails[j] = joints[j] + np.array([0.0, 0.05, 0.0])
            continue
        parent_len = max(np.linalg.norm(joints[j] - joints[p]), 1e-4)
        d = _unit(joints[j] - joints[p])
        reach = (verts[dominant == j] - joints[j]) @ d
        length = reach.max() if reach.size else parent_len
        tails[j] = joints[j] + d * np.clip(length, 0.5 * parent_len, 1.5 * parent_len)
    return tails


def bone_z_axes(heads: np.ndarray, tails: np.ndarray, palm: np.ndarray) -> np.ndarray:
    """Each bone's Z axis (J, 3): the palm normal made perpendicular to the bone.

    With Y along the bone and Z toward the palm, X = Y x Z is the curl axis: a positive
    rotation about the bone's local X curls the finger toward the palm (both hands).
    """
    y = _unit(tails - heads)
    z = palm[None, :] - (y @ palm)[:, None] * y
    degenerate = np.linalg.norm(z, axis=1) < 1e-6
    if np.any(degenerate):  # bone parallel to the palm normal: any perpendicular will do
        alt = np.cross(y[degenerate], np.array([1.0, 0.0, 0.0]))
        z[degenerate] = alt
    return _unit(z)


# --- pose -> Blender channels -----------------------------------------------------------

def basis_quaternions(pose: np.ndarray, bone_rotations: np.ndarray) -> np.ndarray:
    """Pose-bone rotation_quaternion channels (N, J, 4) w-first, hemisphere-aligned per bone.

    pose: (N, J, 3) axis-angle relative to the parent (capture convention).
    bone_rotations: (J, 3, 3) rest rotation of each bone in armature space (``matrix_local``).
    """
    aa_bone = np.einsum("jab,nja->njb", np.asarray(bone_rotations, np.float64),
                        np.asarray(pose, np.float64))  # b^T aa
    return align_hemisphere(axis_angle_to_quaternion(aa_bone))


def root_locations(transl: np.ndarray, root_rotation: np.ndarray) -> np.ndarray:
    """Root pose-bone location channels (N, 3): ``b_0^T transl`` (metres, bone space)."""
    return np.asarray(transl, np.float64) @ np.asarray(root_rotation, np.float64)
