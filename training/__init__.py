"""Training and evaluation of handcap's networks (synthetic data, dataset readers, losses, trainer)."""
