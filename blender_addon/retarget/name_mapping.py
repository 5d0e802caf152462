"""Which bone of a target armature plays which hand joint: detection from names, preset files.

No bpy here: an armature comes in as a list of ``BoneInfo`` (name, parent, constrained), so
detection can be checked without Blender.

Slots are handcap's 16 joints in MANO order (``wrist``, ``index1`` .. ``thumb3``) plus four
optional metacarpals (``index0`` .. ``pinky0``), per side. Names are read as tokens, which
covers the common families without a table per family:

* Rigify metarig and generated rig: ``hand.L``, ``f_index.01.L``, ``thumb.03.R``, ``palm.01.L``
  (the metacarpals, index..pinky), with ``DEF-``/``ORG-`` copies;
* Mixamo: ``mixamorig:LeftHandIndex1`` .. ``3`` (``4`` is the end bone);
* Unreal / MetaHuman: ``hand_l``, ``index_01_l`` .. ``03_l``, ``index_metacarpal_l``;
* VRM: ``J_Bip_L_Index1`` (VRoid), ``leftIndexProximal`` .. ``Distal`` (VRM humanoid, 0.x
  and 1.0 thumbs);
* custom names made of the same words with ``.L/.R``, ``_l/_r``, ``Left/Right``.

When several bones fit a slot (a generated Rigify rig has a control, a ``DEF-`` and an ``ORG-``
bone per finger) the pick is: a bone on the chain the other picks hang from, unconstrained,
without a prefix, then ``DEF-``, then ``ORG-``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re

SIDES = ("left", "right")
FINGERS = ("thumb", "index", "middle", "ring", "pinky")
# handcap's joints in MANO order (the capture file's order); its rig names them like Rigify.
JOINTS = ("wrist", "index1", "index2", "index3", "middle1", "middle2", "middle3",
          "pinky1", "pinky2", "pinky3", "ring1", "ring2", "ring3", "thumb1", "thumb2", "thumb3")
METACARPALS = ("index0", "middle0", "ring0", "pinky0")
SLOTS = JOINTS + METACARPALS
PRESET_FORMAT = "handcap-retarget-preset"
PRESET_VERSION = 1

_FINGER_WORDS = {"thumb": "thumb", "index": "index", "pointer": "index", "fore": "index",
                 "forefinger": "index", "middle": "middle", "mid": "middle", "ring": "ring",
                 "pinky": "pinky", "little": "pinky", "small": "pinky", "baby": "pinky"}
_SIDE_WORDS = {"l": "left", "left": "left", "lf": "left", "lft": "left",
               "r": "right", "right": "right", "rt": "right", "rgt": "right"}
# Bones that are helpers, not the skeleton: Rigify's mechanism and control extras, IK/FK
# duplicates, end/leaf bones, twist bones.
_HELPER_WORDS = {"mch", "master", "ik", "fk", "tweak", "drv", "leaf", "end", "tip", "nub",
                 "target", "pole", "parent", "socket", "twist", "roll", "ctrl", "vis", "jnt_end",
                 "helper", "null", "corrective"}
_PREFIX_RANK = {"": 0, "def": 1, "org": 2}


@dataclasses.dataclass(frozen=True)
class BoneInfo:
    """What detection needs to know about one bone of the target armature."""

    name: str
    parent: str = ""
    constrained: bool = False        # has constraints: its own keys may be overridden


@dataclasses.dataclass
class Mapping:
    """Target bone name per (side, slot); "" where nothing matches."""

    bones: dict = dataclasses.field(default_factory=lambda: {s: {k: "" for k in SLOTS} for s in SIDES})

    def get(self, side: str, slot: str) -> str:
        return self.bones.get(side, {}).get(slot, "")

    def set(self, side: str, slot: str, bone: str) -> None:
        if side not in SIDES or slot not in SLOTS:
            raise ValueError(f"unknown slot {side} {slot} (sides {SIDES}, slots {SLOTS})")
        self.bones[side][slot] = str(bone)

    def missing(self, side: str) -> list:
        """The joints (not metacarpals, which are optional) without a bone on ``side``."""
        return [slot for slot in JOINTS if not self.get(side, slot)]

    def has_fingers(self, side: str) -> bool:
        """Whether any finger bone of ``side`` is mapped (a rig with one hand maps none on the other)."""
        return any(self.get(side, j) for j in JOINTS[1:])

    def sides_found(self) -> list:
        """The sides whose wrist and at least one finger bone are mapped."""
        return [s for s in SIDES if self.get(s, "wrist") and self.has_fingers(s)]


# --- names -> tokens ----------------------------------------------------------------------

def name_tokens(name: str) -> tuple:
    """(prefix, words): a bone name as lower-case words, without a namespace like ``mixamorig:``.

    ``prefix`` is "def"/"org"/"mch" for Rigify's ``DEF-``/``ORG-``/``MCH-`` copies, else "".
    Words split at non-alphanumerics, lower-to-upper case changes and letter/digit changes:
    ``LeftHandIndex1`` -> left, hand, index, 1; ``f_index.01.L`` -> f, index, 01, l.
    """
    name = name.rsplit(":", 1)[-1]
    prefix = ""
    m = re.match(r"^(DEF|ORG|MCH)[-_.]", name, re.IGNORECASE)
    if m:
        prefix, name = m.group(1).lower(), name[m.end():]
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    spaced = re.sub(r"([A-Za-z])([0-9])|([0-9])([A-Za-z])",
                    lambda g: f"{g.group(1) or g.group(3)} {g.group(2) or g.group(4)}", spaced)
    return prefix, tuple(w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w)


@dataclasses.dataclass(frozen=True)
class _Reading:
    """What a bone name says: side, finger ("" for the hand), segment (0 metacarpal, 1..3,
    None unknown), segment word, prefix."""

    side: str
    finger: str
    segment: object
    word: str
    prefix: str


def read_name(name: str):
    """A ``_Reading`` of a bone name, or None when it names no hand bone of one side."""
    prefix, words = name_tokens(name)
    if prefix == "mch" or any(w in _HELPER_WORDS for w in words):
        return None
    sides = {_SIDE_WORDS[w] for w in words if w in _SIDE_WORDS}
    if len(sides) != 1:
        return None
    side = sides.pop()
    numbers = [w for w in words if w.isdigit()]
    fingers = {_FINGER_WORDS[w] for w in words if w in _FINGER_WORDS}
    if "palm" in words and not fingers:                    # Rigify: palm.01..04 = metacarpals
        if len(numbers) == 1 and 1 <= int(numbers[0]) <= 4:
            return _Reading(side, FINGERS[int(numbers[0])], 0, "palm", prefix)
        return None
    if not fingers:
        if "hand" in words and not numbers:
            return _Reading(side, "", None, "hand", prefix)
        return None
    if len(fingers) != 1 or len(numbers) > 1:
        return None
    finger = fingers.pop()
    if "metacarpal" in words or "meta" in words:   # VRM 1.0's thumb metacarpal is handcap's thumb1
        return _Reading(side, finger, None if finger == "thumb" else 0, "metacarpal", prefix)
    if numbers:
        return _Reading(side, finger, int(numbers[0]), "", prefix)
    word = next((w for w in words if w in ("proximal", "intermediate", "medial", "distal")), "")
    if word:
        return _Reading(side, finger, None, word, prefix)
    return None


# --- detection ----------------------------------------------------------------------------

def detect_mapping(bones: list) -> Mapping:
    """The mapping the names of ``bones`` (BoneInfo, any order) suggest; see the module doc."""
    info = {b.name: b for b in bones}
    readings = {b.name: r for b in bones if (r := read_name(b.name)) is not None}
    mapping = Mapping()
    for side in SIDES:
        mine = {n: r for n, r in readings.items() if r.side == side}
        hand_candidates = [n for n, r in mine.items() if r.finger == ""]
        chosen = {}
        for finger in FINGERS:
            chain = _finger_chain({n: r for n, r in mine.items() if r.finger == finger and r.segment != 0},
                                  finger, info)
            for i, name in enumerate(chain):
                chosen[f"{finger}{i + 1}"] = name
        for finger in FINGERS[1:]:
            first = chosen.get(f"{finger}1")
            metas = [n for n, r in mine.items() if r.finger == finger and r.segment == 0]
            metas = [n for n in metas if first and _is_ancestor(n, first, info)] or metas
            if metas:
                chosen[f"{finger}0"] = _best(metas, info, [chosen.get(f"{finger}1", "")])
        firsts = [v for k, v in chosen.items() if k.endswith(("0", "1"))]
        if hand_candidates:
            chosen["wrist"] = _best(hand_candidates, info, firsts)
        for slot, name in chosen.items():
            mapping.set(side, slot, name)
    return mapping


def _finger_chain(candidates: dict, finger: str, info: dict) -> list:
    """Up to three bone names for segments 1..3 of one finger on one side."""
    numbered = {}
    for name, r in candidates.items():
        if r.segment is not None:
            numbered.setdefault(r.segment, []).append(name)
    if numbered:
        keys = sorted(numbered)[:3]
        # segment numbers that start at 0 or 1 both mean "from the knuckle"
        picks = []
        for k in keys:
            picks.append(_best(numbered[k], info, picks[-1:]))
        return picks
    words = {}
    for name, r in candidates.items():
        words.setdefault(r.word, []).append(name)
    if finger == "thumb" and any("metacarpal" == r.word for r in candidates.values()):
        order = ("metacarpal", "proximal", "distal")                       # VRM 1.0 thumb
    else:
        order = ("proximal", "intermediate" if "intermediate" in words else "medial", "distal")
    picks = []
    for word in order:
        if word in words:
            picks.append(_best(words[word], info, picks[-1:]))
    return picks


def _best(names: list, info: dict, related: list) -> str:
    """The best of several bones for one slot (see the module doc for the order)."""
    def rank(name):
        on_chain = any(r and (_is_ancestor(name, r, info) or _is_ancestor(r, name, info)) for r in related)
        prefix = read_name(name).prefix
        return (not on_chain, info[name].constrained if name in info else False,
                _PREFIX_RANK.get(prefix, 3), len(name), name)
    return min(names, key=rank)


def _is_ancestor(ancestor: str, bone: str, info: dict) -> bool:
    seen = set()
    parent = info[bone].parent if bone in info else ""
    while parent and parent not in seen:
        if parent == ancestor:
            return True
        seen.add(parent)
        parent = info[parent].parent if parent in info else ""
    return False


def check_mapping(mapping: Mapping, bones: list) -> list:
    """Problems with a mapping for these bones, one line each (empty: fine): a bone that does
    not exist, a bone used twice, a finger bone that does not hang below its wrist."""
    info = {b.name: b for b in bones}
    problems, used = [], {}
    for side in SIDES:
        for slot in SLOTS:
            bone = mapping.get(side, slot)
            if not bone:
                continue
            if bone not in info:
                problems.append(f"{side} {slot}: no bone named {bone!r}")
                continue
            if bone in used:
                problems.append(f"{side} {slot}: {bone!r} is already {used[bone]}")
            used[bone] = f"{side} {slot}"
        wrist = mapping.get(side, "wrist")
        for slot in SLOTS[1:]:
            bone = mapping.get(side, slot)
            if wrist in info and bone in info and not _is_ancestor(wrist, bone, info):
                problems.append(f"{side} {slot}: {bone!r} does not hang below the wrist {wrist!r}")
    return problems


# --- preset files -------------------------------------------------------------------------

def mapping_to_dict(mapping: Mapping) -> dict:
    return {"format": PRESET_FORMAT, "version": PRESET_VERSION,
            "bones": {s: {k: v for k, v in mapping.bones[s].items() if v} for s in SIDES}}


def mapping_from_dict(data: dict, source: str = "preset") -> Mapping:
    """A Mapping from a preset's JSON object; ValueError naming the first problem."""
    if not isinstance(data, dict) or data.get("format") != PRESET_FORMAT:
        raise ValueError(f"{source}: not a handcap retarget preset (no \"format\": \"{PRESET_FORMAT}\")")
    if data.get("version") != PRESET_VERSION:
        raise ValueError(f"{source}: preset version {data.get('version')!r} is not {PRESET_VERSION}")
    mapping = Mapping()
    bones = data.get("bones", {})
    if not isinstance(bones, dict):
        raise ValueError(f"{source}: \"bones\" must be an object of sides")
    for side, slots in bones.items():
        if side not in SIDES or not isinstance(slots, dict):
            raise ValueError(f"{source}: unknown side {side!r} (use {', '.join(SIDES)})")
        for slot, bone in slots.items():
            if slot not in SLOTS:
                raise ValueError(f"{source}: unknown slot {slot!r} (use {', '.join(SLOTS)})")
            if not isinstance(bone, str):
                raise ValueError(f"{source}: {side} {slot}: the bone must be a name")
            mapping.set(side, slot, bone)
    return mapping


def save_preset(mapping: Mapping, path: str) -> str:
    """Write ``mapping`` as a JSON preset, atomically; returns the absolute path."""
    from ..output_files import atomic_output
    path = os.path.abspath(path)
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(mapping_to_dict(mapping), f, indent=2, sort_keys=False)
            f.write("\n")
    return path


def load_preset(path: str) -> Mapping:
    """Read a JSON preset; ValueError (or OSError) naming the file and the problem."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e.msg}, line {e.lineno})") from None
    return mapping_from_dict(data, path)
