"""Ship a trained network: a trainer checkpoint (or weights file) -> half-precision safetensors.

    python -m training.export runs/hamr_fast/checkpoint.pt core/weights/hamr_fast.safetensors

The output holds only the network (no optimiser state), float16, with its config and where it
came from in the metadata; the engine loads it as float32.
"""

from __future__ import annotations

import argparse
import os

import torch

from core.networks import NetworkConfig, build_network, load_weights, save_weights


def export(source: str, target: str, half: bool = True) -> str:
    """``source``: a training checkpoint.pt or a .safetensors weights file; returns ``target``."""
    if source.endswith(".safetensors"):
        model, config = load_weights(source)
        extra = {"source": os.path.basename(source)}
    else:
        state = torch.load(source, map_location="cpu", weights_only=False)
        config = NetworkConfig.from_dict(state["config"]["network"])
        model = build_network(config)
        model.load_state_dict(state["model"])
        extra = {"steps": str(state["step"]), "train_data": ",".join(state["config"]["data"]["train"]),
                 "source": os.path.basename(source)}
    return save_weights(model, config, target, extra_metadata=extra, half=half)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Write a network's weights as (half-precision) safetensors for shipping.")
    parser.add_argument("source", help="checkpoint.pt of training.train, or a .safetensors weights file")
    parser.add_argument("target", help="output .safetensors")
    parser.add_argument("--float32", action="store_true", help="keep float32 (default: float16, half the size)")
    args = parser.parse_args(argv)
    path = export(args.source, args.target, half=not args.float32)
    print(f"{path} ({os.path.getsize(path) / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
