"""Published hand-skeleton proportions: where the open hand's joint centres go (numbers only).

Bone lengths, millimetres, means over radiographs of 66 adult hands (19-78 years):
Buryanov A., Kotiuk V. (2010) "Proportions of hand segments", Int. J. Morphol. 28(3):755-758.
``DISTAL`` is the bony distal phalanx; ``PULP`` the soft tissue beyond it to the fingertip.

Link convention (as in kinematic hand models built on these data, e.g. van der Hulst et al. 2012,
"A functional anatomy based kinematic human hand model with simple size adaptation", IEEE ICRA):
the distance between consecutive joint centres is the length of the bone between them.

The wrist joint centre: the axes of wrist flexion-extension and radio-ulnar deviation pass through
the head of the capitate (Youm Y., McMurtry R.Y., Flatt A.E., Gillespie T.E. (1978) "Kinematics of
the wrist. I." J. Bone Joint Surg. Am. 60(4):423-431), which lies at about half the carpal height;
the same paper gives the carpal height (third metacarpal base to the radius's distal surface,
along the third metacarpal) as 0.54 +- 0.03 of the third metacarpal's length. So the wrist centre
lies CARPAL_OFFSET = 0.5 * 0.54 = 0.27 third-metacarpal lengths proximal of that bone's base.
"""

from __future__ import annotations

FINGERS = ("thumb", "index", "middle", "ring", "pinky")
METACARPAL = {"thumb": 46.2, "index": 68.1, "middle": 64.6, "ring": 58.0, "pinky": 53.7}
PROXIMAL = {"thumb": 31.6, "index": 39.8, "middle": 44.6, "ring": 41.4, "pinky": 32.7}
MIDDLE = {"index": 22.4, "middle": 26.3, "ring": 25.7, "pinky": 18.1}          # the thumb has none
DISTAL = {"thumb": 21.7, "index": 15.8, "middle": 17.4, "ring": 17.3, "pinky": 16.0}
PULP = {"thumb": 5.7, "index": 3.8, "middle": 4.0, "ring": 4.0, "pinky": 3.7}
CARPAL_HEIGHT_RATIO = 0.54          # Youm et al. 1978: carpal height / third metacarpal length
CARPAL_OFFSET = 0.5 * CARPAL_HEIGHT_RATIO  # wrist centre -> third metacarpal base, in its lengths
SOURCES = ("Buryanov & Kotiuk 2010, Int. J. Morphol. 28(3):755-758 (bone lengths, 66 adult hands); "
           "Youm et al. 1978, J. Bone Joint Surg. Am. 60(4):423-431 (wrist centre in the capitate head, "
           "carpal height ratio 0.54)")


def wrist_to_middle_mcp_mm() -> float:
    """Wrist centre -> middle MCP centre: carpal offset + third metacarpal."""
    return (1.0 + CARPAL_OFFSET) * METACARPAL["middle"]


def published_keypoint_bones_mm() -> dict:
    """Joint-centre distances of the mean published hand, named as in ``training.skeleton_floor``
    (only those the sources give directly)."""
    return {
        "wrist -> middle MCP": wrist_to_middle_mcp_mm(),
        "middle MCP -> PIP": PROXIMAL["middle"], "middle PIP -> DIP": MIDDLE["middle"],
        "index MCP -> PIP": PROXIMAL["index"], "ring MCP -> PIP": PROXIMAL["ring"],
        "pinky MCP -> PIP": PROXIMAL["pinky"],
        "thumb CMC -> MCP": METACARPAL["thumb"], "thumb MCP -> IP": PROXIMAL["thumb"],
    }
