"""Names for what the add-on puts in a scene: Rigify-style bone names, object names.

No bpy here, so the names can be checked without Blender.
"""

from __future__ import annotations

import os

# MANO joint order and kinematic tree (the hand model interface guarantees both).
MANO_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)

# Rigify's names for the same 16 hand bones, in MANO order, without the side suffix.
RIGIFY_HAND_BONES = (
    "hand",
    "f_index.01", "f_index.02", "f_index.03",
    "f_middle.01", "f_middle.02", "f_middle.03",
    "f_pinky.01", "f_pinky.02", "f_pinky.03",
    "f_ring.01", "f_ring.02", "f_ring.03",
    "thumb.01", "thumb.02", "thumb.03",
)

CORRECTIVES_GROUP = "Pose correctives"


def side_suffix(side: str) -> str:
    """Rigify's side suffix: ".R" for a right hand, ".L" for a left hand."""
    return ".L" if side == "left" else ".R"


def is_mano_skeleton(parents) -> bool:
    """True when the skeleton is MANO's 16-joint tree, so joints can be named by index."""
    return tuple(int(p) for p in parents) == MANO_PARENTS


def bone_names(joint_names, parents, side: str) -> list:
    """Bone names for a track: Rigify hand names for MANO skeletons, else the file's joint names.

    Both get Rigify's side suffix (``thumb.01.R``, ``f_pinky.03.L``).
    """
    suffix = side_suffix(side)
    if is_mano_skeleton(parents):
        return [name + suffix for name in RIGIFY_HAND_BONES]
    return [str(name) + suffix for name in joint_names]


def corrective_names(bones: list) -> list:
    """Shape key names for the (J-1)*9 pose-corrective features: ``pc.<bone>.<row><col>``."""
    return [f"pc.{bone}.{r}{c}" for bone in bones[1:] for r in range(3) for c in range(3)]


def capture_title(source_path: str, capture_path: str = "") -> str:
    """The collection name for a capture: the source's file stem, else the capture file's stem."""
    for path in (source_path, capture_path):
        stem = os.path.splitext(os.path.basename(str(path)))[0]
        if stem:
            return stem
    return "Hand Capture"


def rig_names(title: str, track_index: int, side: str, person: int = -1) -> tuple:
    """(armature object, mesh object) names for one hand track of a capture: after its person when
    known (``photo person1 hand3.L``), else after the track (``photo hand3.L``); the track index keeps
    every name of a capture unique."""
    who = f"person{person} " if person >= 0 else ""
    base = f"{title} {who}hand{track_index}{side_suffix(side)}"
    return base + " rig", base


def view_camera_names(source_paths) -> list:
    """Camera object names for the views of a multi-view capture, one per source path: after the
    source's file stem (``left_phone camera``); when stems repeat (``view0/000000.jpg``,
    ``view1/000000.jpg``), after its folder too (``view1/000000 camera``); when those repeat as
    well, or a view has no source, after the view's number (``000000 view2 camera``)."""
    paths = [str(p) for p in source_paths]
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    folders = [os.path.basename(os.path.dirname(p)) for p in paths]
    with_folder = [f"{d}/{s}" if d else s for d, s in zip(folders, stems)]
    names = []
    for c, (stem, longer) in enumerate(zip(stems, with_folder)):
        if stem and stems.count(stem) == 1:
            label = stem
        elif stem and with_folder.count(longer) == 1:
            label = longer
        else:
            label = f"{stem} view{c}" if stem else f"view{c}"
        names.append(label + " camera")
    return names
