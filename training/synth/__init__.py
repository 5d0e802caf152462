"""Synthetic training data: the hand model rendered in natural poses over varied scenes."""

from .dataset import SyntheticHands

__all__ = ["SyntheticHands"]
