"""Bone-name detection and presets for the retarget (no Blender needed), and its rotation maths.

The expected mappings are written out by hand from each family's published naming (Rigify's
metarig and generated rig, Mixamo, Unreal/MetaHuman, VRoid and VRM humanoid), not derived
from the detector's rules.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from blender_addon.retarget import bone_transfer, rotations
from blender_addon.retarget.name_mapping import (BoneInfo, Mapping, check_mapping, detect_mapping, load_preset,
                                                 name_tokens, save_preset)


def chain(*names, parent=""):
    """BoneInfos for a parent -> child chain."""
    out = []
    for name in names:
        out.append(BoneInfo(name, parent))
        parent = name
    return out


def hand(wrist, fingers, wrist_parent="forearm", metacarpals=None, constrained=()):
    """BoneInfos of a hand: ``fingers`` maps finger -> its three names; ``metacarpals`` finger -> name."""
    bones = [BoneInfo(wrist, wrist_parent)]
    for finger, names in fingers.items():
        parent = wrist
        if metacarpals and finger in metacarpals:
            bones.append(BoneInfo(metacarpals[finger], wrist))
            parent = metacarpals[finger]
        bones += chain(*names, parent=parent)
    return [BoneInfo(b.name, b.parent, b.name in constrained) for b in bones]


def expect(mapping, side, table):
    for slot, name in table.items():
        assert mapping.get(side, slot) == name, (side, slot, mapping.get(side, slot), name)


def test_tokens():
    assert name_tokens("mixamorig:LeftHandIndex1") == ("", ("left", "hand", "index", "1"))
    assert name_tokens("DEF-f_index.01.L") == ("def", ("f", "index", "01", "l"))
    assert name_tokens("J_Bip_R_Little3") == ("", ("j", "bip", "r", "little", "3"))
    assert name_tokens("leftThumbMetacarpal") == ("", ("left", "thumb", "metacarpal"))


def test_mixamo_with_end_bones_and_a_namespace():
    names = {f: [f"mixamorig1:RightHand{f.title()}{k}" for k in (1, 2, 3, 4)] for f in ("thumb", "index", "middle", "ring", "pinky")}
    m = detect_mapping(hand("mixamorig1:RightHand", names, "mixamorig1:RightForeArm")
                       + [BoneInfo("mixamorig1:LeftHand", "x")])
    expect(m, "right", {"wrist": "mixamorig1:RightHand", "thumb1": "mixamorig1:RightHandThumb1",
                        "index3": "mixamorig1:RightHandIndex3", "pinky1": "mixamorig1:RightHandPinky1"})
    assert m.sides_found() == ["right"] and m.missing("right") == []
    assert m.get("right", "index0") == ""


def test_unreal_metahuman_with_metacarpals_and_leaves():
    fingers = {f: [f"{f}_01_l", f"{f}_02_l", f"{f}_03_l", f"{f}_04_leaf_l"] for f in ("thumb", "index", "middle", "ring", "pinky")}
    metas = {f: f"{f}_metacarpal_l" for f in ("index", "middle", "ring", "pinky")}
    bones = hand("hand_l", fingers, "lowerarm_l", metas) + [BoneInfo("ik_hand_l", "ik_hand_root")]
    m = detect_mapping(bones)
    expect(m, "left", {"wrist": "hand_l", "thumb1": "thumb_01_l", "thumb3": "thumb_03_l", "index0": "index_metacarpal_l",
                       "pinky0": "pinky_metacarpal_l", "ring2": "ring_02_l"})


def test_vrm_vroid_and_humanoid_names():
    vroid = {f: [f"J_Bip_L_{f}{k}" for k in (1, 2, 3)] for f in ("Thumb", "Index", "Middle", "Ring", "Little")}
    m = detect_mapping(hand("J_Bip_L_Hand", vroid, "J_Bip_L_LowerArm"))
    expect(m, "left", {"wrist": "J_Bip_L_Hand", "pinky2": "J_Bip_L_Little2", "thumb1": "J_Bip_L_Thumb1"})
    vrm1 = {"thumb": ["rightThumbMetacarpal", "rightThumbProximal", "rightThumbDistal"],
            "index": ["rightIndexProximal", "rightIndexIntermediate", "rightIndexDistal"],
            "little": ["rightLittleProximal", "rightLittleIntermediate", "rightLittleDistal"]}
    m = detect_mapping(hand("rightHand", vrm1, "rightLowerArm"))
    expect(m, "right", {"wrist": "rightHand", "thumb1": "rightThumbMetacarpal", "thumb2": "rightThumbProximal",
                        "thumb3": "rightThumbDistal", "index2": "rightIndexIntermediate", "pinky3": "rightLittleDistal"})
    vrm0 = {"thumb": ["rightThumbProximal", "rightThumbIntermediate", "rightThumbDistal"]}
    m = detect_mapping(hand("rightHand", vrm0, "rightLowerArm"))
    expect(m, "right", {"thumb1": "rightThumbProximal", "thumb2": "rightThumbIntermediate"})


def test_rigify_generated_rig_prefers_controls_and_the_chain():
    """A generated Rigify rig: the finger controls (no prefix, unconstrained), the ORG- palm that
    the controls hang from (not the DEF- palm beside it), the ORG- hand (there is no plain one)."""
    bones = [BoneInfo("root"), BoneInfo("ORG-hand.L", "root", False), BoneInfo("DEF-hand.L", "ORG-hand.L", True),
             BoneInfo("hand_ik.L", "root"), BoneInfo("hand_fk.L", "root"),
             BoneInfo("ORG-palm.01.L", "ORG-hand.L", True), BoneInfo("DEF-palm.01.L", "ORG-hand.L", True),
             BoneInfo("MCH-f_index.01_drv.L", "ORG-palm.01.L"), BoneInfo("f_index.01_master.L", "ORG-palm.01.L")]
    parent = "MCH-f_index.01_drv.L"
    for k in (1, 2, 3):
        bones += [BoneInfo(f"f_index.0{k}.L", parent), BoneInfo(f"ORG-f_index.0{k}.L", "ORG-palm.01.L", True),
                  BoneInfo(f"DEF-f_index.0{k}.L", "ORG-palm.01.L", True)]
        bones.append(BoneInfo(f"MCH-f_index.0{k + 1}_drv.L", f"f_index.0{k}.L"))
        parent = f"MCH-f_index.0{k + 1}_drv.L"
    bones.append(BoneInfo("f_index.01.L.001", "ORG-palm.01.L"))
    m = detect_mapping(bones)
    expect(m, "left", {"wrist": "ORG-hand.L", "index0": "ORG-palm.01.L", "index1": "f_index.01.L",
                       "index2": "f_index.02.L", "index3": "f_index.03.L"})
    # a game export with DEF- bones only
    m = detect_mapping([BoneInfo("DEF-hand.R", "DEF-forearm.R"), *chain("DEF-thumb.01.R", "DEF-thumb.02.R", "DEF-thumb.03.R",
                                                                         parent="DEF-hand.R")])
    expect(m, "right", {"wrist": "DEF-hand.R", "thumb2": "DEF-thumb.02.R"})


def test_custom_names_and_unmatched():
    fingers = {"thumb": ["Thumb_1_L", "Thumb_2_L", "Thumb_3_L"], "index": ["pointer1_L", "pointer2_L", "pointer3_L"]}
    m = detect_mapping(hand("Hand_L", fingers, "Arm_L"))
    expect(m, "left", {"wrist": "Hand_L", "thumb2": "Thumb_2_L", "index3": "pointer3_L"})
    assert set(m.missing("left")) == {f"{f}{k}" for f in ("middle", "ring", "pinky") for k in (1, 2, 3)}
    assert detect_mapping([BoneInfo("spine"), BoneInfo("handle"), BoneInfo("hand")]).sides_found() == []


def test_check_mapping_names_the_problems():
    bones = hand("hand.L", {"index": ["f_index.01.L", "f_index.02.L", "f_index.03.L"]}) + [BoneInfo("spine")]
    m = Mapping()
    m.set("left", "wrist", "hand.L")
    m.set("left", "index1", "f_index.01.L")
    m.set("left", "index2", "f_index.01.L")
    m.set("left", "index3", "nope")
    m.set("left", "middle1", "spine")
    assert check_mapping(m, bones) == [
        "left index2: 'f_index.01.L' is already left index1", "left index3: no bone named 'nope'",
        "left middle1: 'spine' does not hang below the wrist 'hand.L'"]


def test_preset_round_trip_and_bad_files(tmp_path):
    m = Mapping()
    m.set("right", "wrist", "hand_r")
    m.set("right", "index0", "index_metacarpal_r")
    path = save_preset(m, tmp_path / "ue.json")
    data = json.loads(open(path).read())
    assert data == {"format": "handcap-retarget-preset", "version": 1,
                    "bones": {"left": {}, "right": {"wrist": "hand_r", "index0": "index_metacarpal_r"}}}
    assert load_preset(path).bones == m.bones
    (tmp_path / "bad.json").write_text('{"format": "handcap-retarget-preset", "version": 1, "bones": {"up": {}}}')
    with pytest.raises(ValueError, match="unknown side 'up'"):
        load_preset(tmp_path / "bad.json")
    (tmp_path / "text.json").write_text("hello")
    with pytest.raises(ValueError, match="not JSON"):
        load_preset(tmp_path / "text.json")


def test_euler_and_quaternion_round_trips():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(50, 4))
    R = rotations.quaternion_to_matrix(q)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    np.testing.assert_allclose(rotations.quaternion_to_matrix(rotations.matrix_to_quaternion(R)), R, atol=1e-12)
    t = np.linspace(0, 4 * np.pi, 400)[:, None]                      # a smooth turn past 360 degrees
    path = rotations.quaternion_to_matrix(np.concatenate([np.cos(t / 2), np.sin(t / 2) * rotations.unit(
        np.concatenate([np.ones_like(t), 0.3 * np.sin(t), 0.2 + 0 * t], 1))], 1))
    for order in rotations.EULER_ORDERS:
        e = rotations.matrix_to_euler(path, order)
        np.testing.assert_allclose(rotations.euler_to_matrix(e, order), path, atol=1e-9)
        assert np.abs(np.diff(e, axis=0)).max() < 1.0                 # continuous: no jumps of pi or 2 pi
    half = rotations.rotation_power(R, 0.5)
    np.testing.assert_allclose(half @ half, R, atol=1e-12)


def test_basis_for_inverts_blenders_pose_formula():
    """Channels from ``basis_for`` put back into the pose formula give the asked rotation and head."""
    rng = np.random.default_rng(2)

    def rigid():
        m = np.eye(4)
        m[:3, :3] = rotations.quaternion_to_matrix(rng.normal(size=4))
        m[:3, 3] = rng.normal(size=3)
        return m
    rest_parent, rest, posed_parent = rigid(), rigid(), np.stack([rigid() for _ in range(5)])
    want = rotations.quaternion_to_matrix(rng.normal(size=(5, 4)))
    head = rng.normal(size=(5, 3))
    rot, loc, posed = bone_transfer.basis_for(rest_parent, posed_parent, rest, want, head)
    basis = np.broadcast_to(np.eye(4), (5, 4, 4)).copy()
    basis[:, :3, :3], basis[:, :3, 3] = rot, loc
    again = posed_parent @ np.linalg.inv(rest_parent) @ rest @ basis          # Blender's formula, written out
    np.testing.assert_allclose(again[:, :3, :3], want, atol=1e-12)
    np.testing.assert_allclose(again[:, :3, 3], head, atol=1e-12)
    np.testing.assert_allclose(posed, again, atol=1e-12)


def test_retarget_command_usage_errors(tmp_path, capsys):
    """`handcap retarget` refuses a wrong output type, a missing rig or preset at once (exit 2)."""
    from core.cli import main
    rig = tmp_path / "rig.blend"
    rig.write_bytes(b"x")
    assert main(["retarget", "a.npz", "--rig", str(rig), "-o", str(tmp_path / "out.glb")]) == 2
    assert "a retarget writes .blend or .fbx" in capsys.readouterr().err
    assert main(["retarget", "a.npz", "--rig", str(tmp_path / "none.blend"), "-o", str(tmp_path / "o.fbx")]) == 2
    assert "--rig" in capsys.readouterr().err
    assert main(["retarget", "a.npz", "--rig", str(rig), "--mapping", "no.json", "-o", str(tmp_path / "o.blend")]) == 2
    assert not (tmp_path / "o.blend").exists() and not (tmp_path / "o.fbx").exists()
    with pytest.raises(SystemExit) as exit_:
        main(["retarget", "a.npz", "--rig", str(rig), "--metacarpal-share", "2", "-o", "o.blend"])
    assert exit_.value.code == 2 and "out of range" in capsys.readouterr().err


def test_transfer_onto_a_turned_copy_with_rolled_bones():
    """A target that is the source hand turned by Q, every bone rolled by its own angle about
    its length: each target bone's world rotation must be Q @ (source bone's) @ roll, on every
    frame, with the source wrist still (the hand frames then differ by Q only)."""
    rng = np.random.default_rng(5)
    slots = ["wrist", "index1", "index2", "middle1", "ring1", "pinky1", "pinky2", "thumb1"]
    heads = {"wrist": np.zeros(3), "index1": np.array([0.03, 0.08, 0]), "index2": np.array([0.032, 0.12, 0]),
             "middle1": np.array([0.005, 0.085, 0]), "ring1": np.array([-0.015, 0.08, 0]),
             "pinky1": np.array([-0.03, 0.07, 0]), "pinky2": np.array([-0.033, 0.1, 0]),
             "thumb1": np.array([0.02, 0.02, 0.01])}
    tails = {"wrist": heads["middle1"], "index1": heads["index2"], "index2": np.array([0.033, 0.15, 0.0]),
             "middle1": np.array([0.005, 0.13, 0]), "ring1": np.array([-0.016, 0.12, 0]),
             "pinky1": heads["pinky2"], "pinky2": np.array([-0.035, 0.12, 0.0]), "thumb1": np.array([0.05, 0.05, 0.03])}

    def bone_rotation(head, tail, seed):
        y = rotations.unit(tail - head)
        x = rotations.unit(np.cross(y, np.random.default_rng(seed).normal(size=3)))
        return np.stack([x, y, np.cross(x, y)], 1)

    source_rot = {s: bone_rotation(heads[s], tails[s], k) for k, s in enumerate(slots)}
    Q = rotations.quaternion_to_matrix(rng.normal(size=4))
    rolls = {s: rotations.quaternion_to_matrix(np.r_[np.cos(a / 2), 0, np.sin(a / 2), 0])
             for s, a in zip(slots, rng.uniform(-np.pi, np.pi, len(slots)))}    # about the bone's own Y
    source = bone_transfer.HandRest("right", source_rot, heads, tails)
    target = bone_transfer.HandRest("right", {s: Q @ source_rot[s] @ rolls[s] for s in slots},
                                    {s: Q @ h for s, h in heads.items()}, {s: Q @ t for s, t in tails.items()})
    N = 4
    posed = {s: rotations.quaternion_to_matrix(rng.normal(size=(N, 4))) @ source_rot[s] for s in slots}
    posed["wrist"] = np.broadcast_to(source_rot["wrist"], (N, 3, 3))
    out = bone_transfer.target_world_rotations(source, posed, target, bone_transfer.TransferOptions())
    assert sorted(out) == sorted(slots[1:])
    for s in slots[1:]:
        np.testing.assert_allclose(out[s], Q @ posed[s] @ rolls[s], atol=1e-9)
