"""Readers of public hand datasets in their official folder layouts; each item is a raw sample
(``training/sample.py``).

    FreiHAND(root, split="training"|"evaluation")   # also our synthetic renders in that layout
    RHD(root, split="training"|"evaluation")        # RHD_published_v2
"""

from .freihand import FreiHAND
from .rhd import RHD

__all__ = ["FreiHAND", "RHD"]
