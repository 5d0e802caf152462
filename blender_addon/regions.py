"""Hand regions: boxes the user gives instead of detection (no bpy).

A region is ``(x0, y0, x1, y1)`` in pixels of the full photo or video frame, x to the right and
y down from the image's top-left corner, as the engine's ``--box`` takes it; a video uses the
same regions on every frame. Estimate Hand passes one ``--box x0,y0,x1,y1`` per region after
``check_boxes`` has accepted them all.
"""

from __future__ import annotations

import math


class RegionError(ValueError):
    """A region that cannot be used; the message names the region and the problem."""


def format_number(value) -> str:
    """A pixel coordinate as the engine reads it: ``12`` for whole numbers, else ``12.5``."""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def format_box(box) -> str:
    """``(x0, y0, x1, y1)`` -> ``"x0,y0,x1,y1"``."""
    return ",".join(format_number(v) for v in box)


NO_REGIONS = "no hand regions: add one, or turn off 'Use Regions Instead of Detection'"


def check_boxes(boxes, image_size=None, required: bool = False) -> list:
    """The regions as ``(x0, y0, x1, y1)`` float tuples, or RegionError naming the first bad one.

    A region needs four finite numbers with x1 > x0 and y1 > y0; with ``image_size`` =
    (width, height) known (both > 0), it must also lie inside the image: 0 <= x0, x1 <= width,
    0 <= y0, y1 <= height. ``required``: no regions at all is an error too.
    """
    boxes = list(boxes)
    if required and not boxes:
        raise RegionError(NO_REGIONS)
    known = image_size is not None and min(image_size) > 0
    checked = []
    for i, box in enumerate(boxes, 1):
        try:
            x0, y0, x1, y1 = (float(v) for v in box)
        except (TypeError, ValueError):
            raise RegionError(f"region {i}: expected four numbers x0, y0, x1, y1, got {box!r}") from None
        name = f"region {i} ({format_box((x0, y0, x1, y1))})"
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            raise RegionError(f"{name}: coordinates must be finite numbers")
        if not x1 > x0:
            raise RegionError(f"{name}: x1 must be greater than x0")
        if not y1 > y0:
            raise RegionError(f"{name}: y1 must be greater than y0")
        if known:
            width, height = (int(v) for v in image_size)
            outside = [text for bad, text in ((x0 < 0, "x0 < 0"), (y0 < 0, "y0 < 0"),
                                              (x1 > width, f"x1 > {width}"), (y1 > height, f"y1 > {height}"))
                       if bad]
            if outside:
                raise RegionError(f"{name}: outside the {width} x {height} image ({', '.join(outside)})")
        checked.append((x0, y0, x1, y1))
    return checked


def box_arguments(boxes) -> list:
    """Engine command-line options: ``["--box", "x0,y0,x1,y1", ...]``, one pair per region."""
    args = []
    for box in boxes:
        args += ["--box", format_box(box)]
    return args


def view_box(view_min, view_max, image_size) -> tuple:
    """The part of an image that an Image Editor shows, as a region in whole pixels.

    ``view_min`` / ``view_max``: the (u, v) image coordinates at the bottom-left and top-right
    corners of the editor's region (Blender's image space: 0..1 across the image, v up), from
    ``region.view2d.region_to_view``. The result is clipped to the image and rounded outward;
    RegionError when the editor shows none of the image.
    """
    width, height = (int(v) for v in image_size)
    if width <= 0 or height <= 0:
        raise RegionError("the image has no pixels (not loaded?)")
    (u0, v0), (u1, v1) = view_min, view_max
    x0 = max(0, math.floor(min(u0, u1) * width))
    x1 = min(width, math.ceil(max(u0, u1) * width))
    y0 = max(0, math.floor((1.0 - max(v0, v1)) * height))       # pixel rows go down, v goes up
    y1 = min(height, math.ceil((1.0 - min(v0, v1)) * height))
    if x1 <= x0 or y1 <= y0:
        raise RegionError("the Image Editor shows none of the image: pan or zoom onto the hand")
    return (x0, y0, x1, y1)
