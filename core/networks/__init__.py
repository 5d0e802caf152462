"""Hand networks: HAMR (heatmaps + iterative hand-model regression) and the direct-regression
baseline, their config, weights files and heatmap decoding.

    config = NetworkConfig(arch="hamr", backbone="resnet18", input_size=128)
    model = build_network(config)
    save_weights(model, config, "hamr.safetensors"); model, config = load_weights("hamr.safetensors")
"""

from .baseline import Baseline
from .build import build_network
from .config import NetworkConfig
from .hamr import HAMR
from .heatmaps import keypoints_from_heatmaps, render_heatmaps
from .weights import WeightsError, load_weights, save_weights

__all__ = ["NetworkConfig", "HAMR", "Baseline", "build_network", "keypoints_from_heatmaps", "render_heatmaps",
           "save_weights", "load_weights", "WeightsError"]
