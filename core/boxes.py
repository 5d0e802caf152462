"""User hand boxes (``--box x0,y0,x1,y1``): parsed from text, clipped to the image (numpy-free).

A box is in pixels of the full photo or video frame, x right and y down from the top-left corner.
A box partly outside the image is clipped to it; a box with no pixel inside the image is an error
that names the box. Negative coordinates are fine (a box can start left of or above the image).
"""

from __future__ import annotations

import math
from typing import Optional

BOX_HELP = "x0,y0,x1,y1"


def box_text(box) -> str:
    """(x0, y0, x1, y1) -> 'x0,y0,x1,y1' with whole numbers written without decimals."""
    return ",".join(str(int(v)) if float(v).is_integer() else f"{v:g}" for v in box)


def parse_box(text: str) -> tuple:
    """'x0,y0,x1,y1' (pixels) -> a tuple of 4 finite floats with x0 < x1 and y0 < y1; ValueError
    naming the text otherwise."""
    try:
        x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--box {text!r}: expected {BOX_HELP} in pixels") from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise ValueError(f"--box {text!r}: coordinates must be finite numbers")
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"--box {text!r}: needs x0 < x1 and y0 < y1")
    return (x0, y0, x1, y1)


def clip_box(box, width: int, height: int) -> Optional[tuple]:
    """A box clipped to a width x height image, or None when less than one pixel of it is inside."""
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = max(x0, 0.0), min(x1, float(width))
    y0, y1 = max(y0, 0.0), min(y1, float(height))
    if x1 - x0 < 1.0 or y1 - y0 < 1.0:
        return None
    return (x0, y0, x1, y1)


def clip_boxes(boxes, width: int, height: int) -> tuple:
    """Every box clipped to the image; ValueError naming the first box that lies outside it."""
    clipped = []
    for box in boxes:
        inside = clip_box(box, width, height)
        if inside is None:
            raise ValueError(f"--box {box_text(box)} lies outside the {width} x {height} image")
        clipped.append(inside)
    return tuple(clipped)


def join_box_values(argv: list, option: str = "--box") -> list:
    """``[option, '-50,-50,-10,-10']`` -> ``[option + '=-50,-50,-10,-10']``: argparse takes a value
    that starts with '-' for an option name, so a box with negative coordinates is joined to its
    option before parsing (``--box=-50,...`` already works)."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] == option and i + 1 < len(argv) and argv[i + 1].startswith("-") and "," in argv[i + 1]:
            out.append(f"{option}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out
