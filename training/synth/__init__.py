"""Synthetic training data: the hand model rendered in natural poses over varied scenes.

    SyntheticHands(count=None, seed=0, split="train", size=224, backgrounds=None)  # IterableDataset
    python -m training.synth --out DIR --count N [--split train|heldout]         # FreiHAND layout
    python -m training.synth --grid docs/synth_samples.png                        # look at samples
    python -m training.synth --video DIR --clips N [--frames F]                   # benchmark clips (sequences.py)
    python -m training.synth.multiview --out DIR --count N --views V              # one hand seen by V cameras
    python -m training.synth.multiview --clip F --out DIR --count N [--offset K]  # moving hands, 2 cameras
"""

from .dataset import SyntheticHands

__all__ = ["SyntheticHands"]
