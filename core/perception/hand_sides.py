"""Which hand a tracked hand is: its side as evidence gathered over the frames it was tracked.

The landmark model calls each crop's handedness on its own, and from one view a hand's side is often
ambiguous (a flat hand seen from the back looks like the other hand seen from the palm): on the
rendered benchmark clips a tracked hand's call flipped for single frames, sometimes at 0.95. A hand
cannot change side, so the video tracker (``core.perception.hand_tracker``) keeps, per tracked hand,
the log-odds that it is a right hand, summed over its frames with a fading memory:

    evidence_t = SIDE_MEMORY * evidence_(t-1) + logit(p_right_t)   (each frame's logit within +-MAX_LOGIT)

and reports the side and confidence of that sum. A hand found anew starts from its first call alone.
Two hands of one frame are a person's two hands (a video keeps two hands per frame): when both lean
to one side, the one with the weaker evidence is the other hand (``one_of_each_side``).
"""

from __future__ import annotations

import math
from typing import Optional

SIDE_MEMORY = 0.9      # per frame: a call 10 frames back counts 0.35 of one made now; the sum saturates
                       # at MAX_LOGIT / (1 - SIDE_MEMORY) = 46, so a long-held side takes several frames to undo
MAX_LOGIT = 4.6        # one frame's call counts as at most p = 0.99


def logit(p: float) -> float:
    """log(p / (1 - p)), clipped to +-MAX_LOGIT."""
    p = min(max(float(p), 1e-6), 1.0 - 1e-6)
    return max(-MAX_LOGIT, min(MAX_LOGIT, math.log(p / (1.0 - p))))


def probability(evidence: float) -> float:
    """Log-odds -> probability (of a right hand)."""
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, evidence))))


def side_evidence(right: float, before: Optional[float] = None) -> float:
    """A hand's log-odds of being a right hand after this frame's call ``right`` (probability in [0, 1]),
    given its evidence ``before`` (None: a hand found anew)."""
    now = logit(right)
    return now if before is None else SIDE_MEMORY * before + now


def one_of_each_side(evidence: list[float]) -> list[float]:
    """Two hands' evidence -> the same, with the weaker one's sign turned when both lean to one side
    (a person's two hands are a left and a right one). Any other count is returned as it is."""
    if len(evidence) != 2 or (evidence[0] > 0) != (evidence[1] > 0):
        return list(evidence)
    weaker = 0 if abs(evidence[0]) < abs(evidence[1]) else 1
    out = list(evidence)
    out[weaker] = -out[weaker] if out[weaker] != 0 else (-1e-3 if out[1 - weaker] > 0 else 1e-3)
    return out
