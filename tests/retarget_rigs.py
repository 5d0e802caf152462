"""Target rigs for the retarget tests, built with bpy in the test (nothing downloaded).

Each rig is a hand (or two) named like one family (Mixamo, Unreal/MetaHuman, VRM, custom), with
its own proportions, a rest pose unlike handcap's (fingers relaxed, hand turned), bone rolls
chosen at random, and body bones above the hand that the retarget must leave alone. Rigify's
human metarig and a generated Rigify rig come from the Rigify add-on inside the bpy wheel.

The tests know each rig's palm side from how it was built (``TargetRig.palm_normal``), not
from the add-on.
"""

from __future__ import annotations

import dataclasses

import numpy as np

FINGERS = ("thumb", "index", "middle", "ring", "pinky")


@dataclasses.dataclass
class TargetRig:
    obj: object                       # the armature object
    family: str
    bones: dict                       # (side, slot) -> bone name, the truth the test expects
    palm_normal: dict                 # side -> (3,) world, toward the palm, at rest
    body: list                        # bones the retarget must not touch


def _rot(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def hand_joints(side: str, relaxed: float, metacarpals: bool, scale: float = 1.0, seed: int = 0) -> dict:
    """Joint positions of a hand in its own frame: wrist at 0, fingers along +y, palm toward +z,
    index on +x for a right hand (mirrored for a left one). Returns slot -> (head, tail).

    Fingers are curled by ``relaxed`` radians per joint toward the palm and spread a little; the
    thumb points out between +x and +y, tipped toward the palm.
    """
    rng = np.random.default_rng(seed)
    sx = -1.0 if side == "left" else 1.0
    out = {}
    bases = {"index": (0.024, 0.082), "middle": (0.004, 0.085), "ring": (-0.014, 0.080), "pinky": (-0.030, 0.072)}
    lengths = {"index": (0.042, 0.025, 0.020), "middle": (0.046, 0.028, 0.021),
               "ring": (0.043, 0.027, 0.020), "pinky": (0.033, 0.020, 0.017), "thumb": (0.040, 0.032, 0.026)}
    out["wrist"] = (np.zeros(3), np.array([0.0, 0.08, 0.0]))
    for finger, (x, y) in bases.items():
        knuckle = np.array([x, y, 0.0])
        if metacarpals:
            out[f"{finger}0"] = (np.array([0.4 * x, 0.012, 0.0]), knuckle)
        d = np.array([0.25 * x / 0.03 + rng.normal(scale=0.03), 1.0, 0.0])
        d /= np.linalg.norm(d)
        head = knuckle
        for k, length in enumerate(lengths[finger]):
            axis = np.cross(d, [0, 0, 1.0])
            d = _rot(axis, relaxed * (1.0 + 0.3 * k)) @ d          # curl toward +z
            out[f"{finger}{k + 1}"] = (head, head + d * length)
            head = head + d * length
    d = np.array([1.0, 1.0, 0.35])
    d /= np.linalg.norm(d)
    head = np.array([0.018, 0.022, 0.008])
    for k, length in enumerate(lengths["thumb"]):
        axis = np.cross(d, [0, 0, 1.0])
        d = _rot(axis, 0.5 * relaxed) @ d
        out[f"thumb{k + 1}"] = (head, head + d * length)
        head = head + d * length
    mirror = np.array([sx, 1.0, 1.0])
    return {k: (h * mirror * scale, t * mirror * scale) for k, (h, t) in out.items()}


def _slot_names(family: str, side: str) -> dict:
    """slot -> bone name for a family (None: the family has no such bone)."""
    L = side == "left"
    names = {}
    for finger in FINGERS:
        for k in (0, 1, 2, 3):
            slot = f"{finger}{k}"
            if family == "mixamo":
                f = {"thumb": "Thumb", "index": "Index", "middle": "Middle", "ring": "Ring", "pinky": "Pinky"}[finger]
                names[slot] = None if k == 0 else f"mixamorig:{'Left' if L else 'Right'}Hand{f}{k}"
            elif family == "unreal":
                s = "l" if L else "r"
                names[slot] = (f"{finger}_metacarpal_{s}" if k == 0 and finger != "thumb" else
                               None if k == 0 else f"{finger}_0{k}_{s}")
            elif family == "vrm":
                f = {"thumb": "Thumb", "index": "Index", "middle": "Middle", "ring": "Ring", "pinky": "Little"}[finger]
                names[slot] = None if k == 0 else f"J_Bip_{'L' if L else 'R'}_{f}{k}"
            elif family == "custom":                          # no pinky at all
                f = {"thumb": "thumb", "index": "pointer", "middle": "mid", "ring": "ring", "pinky": None}[finger]
                names[slot] = None if (k == 0 or f is None) else f"{f}{k}.{'l' if L else 'r'}"
    names["wrist"] = {"mixamo": f"mixamorig:{'Left' if L else 'Right'}Hand", "unreal": f"hand_{'l' if L else 'r'}",
                      "vrm": f"J_Bip_{'L' if L else 'R'}_Hand", "custom": f"hand.{'l' if L else 'r'}"}[family]
    return {k: v for k, v in names.items() if v}


def _leaf_name(family: str, name: str) -> str:
    if family == "mixamo":
        return name[:-1] + "4"
    if family == "unreal":
        return name.replace("_03_", "_04_leaf_")
    return name + "_end"


def build_family_rig(family: str, sides=("left", "right"), seed: int = 0, name: str = "", x_forward: bool = False):
    """A character-like armature of ``family`` with both hands (see the module doc).

    ``x_forward``: hand bones point along their local X, not Y, as an Unreal FBX imported
    without automatic bone orientation: Blender's tail sticks out sideways from the finger.
    """
    import bpy
    rng = np.random.default_rng(seed)
    units = 100.0 if family == "mixamo" else 1.0                  # Mixamo FBX: centimetres, object scale 0.01
    data = bpy.data.armatures.new(name or f"{family} rig")
    obj = bpy.data.objects.new(name or f"{family} rig", data)
    bpy.context.scene.collection.objects.link(obj)
    if family == "mixamo":
        obj.rotation_euler = (np.pi / 2, 0.0, 0.0)
        obj.scale = (0.01, 0.01, 0.01)
        obj.location = (0.3, -0.2, 0.0)
    elif family == "vrm":
        obj.rotation_euler = (0.0, 0.0, np.pi)                     # VRM faces -y in glTF, turned here
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    bpy.ops.object.mode_set(mode="EDIT")
    eb = data.edit_bones
    # body: a root, a spine, and per side a shoulder -> upper arm -> forearm
    body = []

    def bone(n, head, tail, parent=None, z=None, connect=False, sideways=False):
        b = eb.new(n)
        if sideways:            # Y across the segment, X along it
            d = (tail - head) / np.linalg.norm(tail - head)
            across = np.cross(d, z)
            across /= np.linalg.norm(across)
            b.head, b.tail = [float(v) * units for v in head], [float(v) * units for v in head + 0.6 * across * np.linalg.norm(tail - head)]
            b.align_roll([float(v) for v in np.cross(d, across)])
            b.parent = parent
            return b
        b.head, b.tail = [float(v) * units for v in head], [float(v) * units for v in tail]
        if z is not None:
            b.align_roll([float(v) for v in z])
        b.parent = parent
        b.use_connect = connect
        return b

    if family == "mixamo":   # Mixamo's armature space is y up (the object turns it to Blender's z up)
        up, fwd = np.array([0, 1.0, 0]), np.array([0, 0, 1.0])
    else:
        up, fwd = np.array([0, 0, 1.0]), np.array([0, -1.0, 0])
    hips = bone({"mixamo": "mixamorig:Hips", "unreal": "pelvis", "vrm": "J_Bip_C_Hips", "custom": "hips"}[family],
                up * 1.0, up * 1.1)
    spine = bone({"mixamo": "mixamorig:Spine", "unreal": "spine_01", "vrm": "J_Bip_C_Spine", "custom": "spine"}[family],
                 up * 1.1, up * 1.4, hips, connect=True)
    body += [hips.name, spine.name]
    truth, palms = {}, {}
    for side in sides:
        s = 1.0 if side == "left" else -1.0
        lateral = np.cross(up, fwd) * -s                            # toward this side's hand
        sh = bone(f"{family}_shoulder_{side}", up * 1.4, up * 1.4 + lateral * 0.15, spine)
        upper = bone(f"{family}_upperarm_{side}", sh.tail / units, up * 1.4 + lateral * 0.45, sh, connect=True)
        fore = bone(f"{family}_forearm_{side}", upper.tail / units, up * 1.4 + lateral * 0.72, upper, connect=True)
        body += [sh.name, upper.name, fore.name]
        # the hand: along the arm (T pose), palm down, turned 20 degrees about the arm
        palm_down = -up
        R = np.stack([np.cross(lateral, palm_down), lateral, palm_down], 1)    # hand x, y, z -> world
        R = _rot(lateral, np.radians(20.0 * s)) @ R
        offset = fore.tail / units
        geometry = hand_joints(side, relaxed=np.radians(18.0), metacarpals=family == "unreal",
                               scale=1.1, seed=seed + (side == "left"))
        names = _slot_names(family, side)
        made = {}
        order = ["wrist"] + [f"{f}{k}" for f in FINGERS for k in (0, 1, 2, 3)]
        for slot in order:
            if slot not in names or slot not in geometry:
                continue
            head, tail = (R @ p + offset for p in geometry[slot])
            d = (tail - head) / np.linalg.norm(tail - head)
            z = np.cross(d, rng.normal(size=3))                   # a random roll
            finger, k = slot[:-1], int(slot[-1]) if slot != "wrist" else -1
            if slot == "wrist":
                parent = fore
            elif k == 0 or (k == 1 and f"{finger}0" not in made):
                parent = made["wrist"]
            else:
                parent = made[f"{finger}{k - 1}"]
            made[slot] = bone(names[slot], head, tail, parent, z, connect=slot != "wrist" and k > 1 and not x_forward,
                              sideways=x_forward and slot != "wrist")
            truth[(side, slot)] = names[slot]
            if k == 3 and family in ("mixamo", "unreal"):        # end bones, as exporters add them
                leaf = bone(_leaf_name(family, names[slot]), tail, tail + d * 0.01, made[slot],
                            connect=not x_forward)
                body.append(leaf.name)
        palms[side] = R @ np.array([0, 0, 1.0])
    bpy.ops.object.mode_set(mode="OBJECT")
    world = np.array(obj.matrix_world)[:3, :3]
    world /= np.linalg.norm(world[:, 0])
    palms = {k: world @ v for k, v in palms.items()}
    if family == "mixamo":               # Euler rotation modes, as some FBX imports have
        for (side, slot), n in truth.items():
            if slot.startswith("index"):
                obj.pose.bones[n].rotation_mode = "YZX" if side == "left" else "XYZ"
    return TargetRig(obj, family, truth, palms, body)


def rigify_rigs():
    """(metarig, generated rig) as TargetRigs: Rigify's human metarig, and a rig generated from
    its hands (the rest of the metarig removed first, so generating takes a fraction of a second)."""
    import addon_utils
    import bpy
    addon_utils.enable("rigify", default_set=True)
    bpy.ops.object.armature_human_metarig_add()
    meta = bpy.context.object
    meta.location = (2.0, 0.0, 0.0)
    truth = {}
    rigify_names = {"wrist": "hand", "index0": "palm.01", "middle0": "palm.02", "ring0": "palm.03", "pinky0": "palm.04"}
    for side, suf in (("left", ".L"), ("right", ".R")):
        for slot in ["wrist", "index0", "middle0", "ring0", "pinky0"]:
            truth[(side, slot)] = rigify_names[slot] + suf
        for f in FINGERS:
            for k in (1, 2, 3):
                truth[(side, f"{f}{k}")] = (f"thumb.0{k}" if f == "thumb" else f"f_{f}.0{k}") + suf
    palms = {}
    for side, suf in (("left", ".L"), ("right", ".R")):
        b = meta.data.bones
        w, i, p = (np.array(meta.matrix_world @ b[n + suf].head_local) for n in ("hand", "f_index.01", "f_pinky.01"))
        n = np.cross(i - w, p - w)
        palms[side] = (-n if side == "left" else n) / np.linalg.norm(n)
    hand_bones = {n for n in truth.values()}
    meta_rig = TargetRig(meta, "rigify metarig", truth, palms,
                         [b.name for b in meta.data.bones if b.name not in hand_bones])
    # the generated rig: copy the metarig, keep the hands only, generate
    copy = meta.copy()
    copy.data = meta.data.copy()
    copy.name = "hands metarig"
    bpy.context.scene.collection.objects.link(copy)
    for o in bpy.context.view_layer.objects.selected:
        o.select_set(False)
    bpy.context.view_layer.objects.active = copy
    copy.select_set(True)
    bpy.ops.object.mode_set(mode="EDIT")
    for b in list(copy.data.edit_bones):
        if b.name not in hand_bones:
            copy.data.edit_bones.remove(b)
    bpy.ops.object.mode_set(mode="OBJECT")
    copy.data.rigify_target_rig = None
    bpy.ops.pose.rigify_generate()
    rig = copy.data.rigify_target_rig
    gen_truth = {}
    for (side, slot), n in truth.items():
        if slot == "wrist":
            gen_truth[(side, slot)] = "ORG-" + n
        elif slot.endswith("0"):
            gen_truth[(side, slot)] = "ORG-" + n
        else:
            gen_truth[(side, slot)] = n
    gen_rig = TargetRig(rig, "rigify generated", gen_truth, palms,
                        [b.name for b in rig.data.bones if b.name not in gen_truth.values()])
    bpy.data.objects.remove(copy)
    return meta_rig, gen_rig


def add_skinned_mesh(rig: TargetRig, bones: list = None, radius: float = 0.006) -> object:
    """A mesh of square tubes, one per bone (all of the rig's hand bones by default), each fully
    weighted to its bone, parented to the armature with an Armature modifier."""
    import bpy
    obj = rig.obj
    bones = bones or sorted(set(rig.bones.values()))
    M = np.array(obj.matrix_world)
    scale = np.linalg.norm(M[:3, 0])
    verts, faces, groups = [], [], []
    for name in bones:
        b = obj.data.bones[name]
        head, tail = np.array(b.head_local), np.array(b.tail_local)
        x, z = np.array(b.x_axis), np.array(b.z_axis)
        r = radius / scale
        start = len(verts)
        for end in (head, tail):
            for sx, sz in ((1, 1), (-1, 1), (-1, -1), (1, -1)):
                verts.append(end + r * (sx * x + sz * z))
        for k in range(4):
            a, b2 = start + k, start + (k + 1) % 4
            faces.append((a, b2, b2 + 4, a + 4))
        faces += [(start + 3, start + 2, start + 1, start), (start + 4, start + 5, start + 6, start + 7)]
        groups.append((name, range(start, start + 8)))
    mesh = bpy.data.meshes.new(f"{obj.name} skin")
    mesh.from_pydata([tuple(v) for v in verts], [], faces)
    skin = bpy.data.objects.new(f"{obj.name} skin", mesh)
    for collection in obj.users_collection:
        collection.objects.link(skin)
    skin.parent = obj
    for name, idx in groups:
        skin.vertex_groups.new(name=name).add(list(idx), 1.0, "REPLACE")
    skin.modifiers.new("Armature", "ARMATURE").object = obj
    return skin
