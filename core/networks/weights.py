"""Network weights files: safetensors with the config and provenance as JSON metadata.

Metadata keys (all strings): ``format`` ("handcap-network/1"), ``config`` (NetworkConfig as
JSON), ``arch``, ``backbone``, ``input_size``, ``hand_model`` (the config's name or path),
``num_vertices`` (of that hand model, for HAMR), ``dtype`` ("float32" | "float16") and
``extra`` (the caller's JSON, e.g. training step and data). The hand layer's buffers are not
stored: they come from the hand model when the network is built. Nor is a pretrained trunk
(``config.pretrained_trunk``, keys ``trunk.*``): its weights ship with core.perception and are
loaded when the network is built; such a file says so in ``trunk`` (and carries ``trunk_notice``).
"""

from __future__ import annotations

import json
import os
from typing import Optional

from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from .build import build_network
from .config import NetworkConfig

FORMAT = "handcap-network/1"
TRUNK_PREFIX = "trunk."
TRUNK_NOTICE = ("The frozen trunk is MediaPipe 0.10.21's hand_landmark_full model (Apache-2.0, Google LLC), "
                "shipped in core/perception/weights with its LICENSE and NOTICE; this file holds only the head "
                "trained on it by handcap.")


def stored_keys(config: NetworkConfig, keys) -> list:
    """The state-dict keys a weights file of ``config`` holds: all but a pretrained trunk's."""
    return [k for k in keys if not (config.pretrained_trunk and k.startswith(TRUNK_PREFIX))]


class WeightsError(ValueError):
    """A weights file is missing, not safetensors, not handcap's, or does not fit its config."""


def _unwrap(model: nn.Module) -> nn.Module:
    """The plain network inside DistributedDataParallel and/or torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            return model
        model = inner


def save_weights(model: nn.Module, config: NetworkConfig, path: str, extra_metadata: Optional[dict] = None,
                 half: bool = False) -> str:
    """Write ``model``'s parameters and buffers to ``path`` (atomically); returns ``path``.

    half=True stores floating tensors as float16 (half the size; outputs change by ~1e-3 relative).
    """
    model = _unwrap(model)
    if getattr(model, "config", config) != config:
        raise WeightsError(f"model was built with {model.config}, not {config}")
    state = {}
    full = model.state_dict()
    for key in stored_keys(config, full):
        value = full[key].detach().to("cpu").contiguous()
        state[key] = value.half() if half and value.is_floating_point() else value
    hand_layer = getattr(model, "hand_layer", None)
    metadata = {
        "format": FORMAT, "config": json.dumps(config.to_dict()), "arch": config.arch, "backbone": config.backbone,
        "input_size": str(config.input_size), "hand_model": config.hand_model,
        "num_vertices": str(hand_layer.v_template.shape[0]) if hand_layer is not None else "",
        "dtype": "float16" if half else "float32", "extra": json.dumps(extra_metadata or {}),
    }
    if config.pretrained_trunk:
        metadata.update(trunk=f"{config.backbone}: core/perception/weights (not stored here)", trunk_notice=TRUNK_NOTICE)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        save_file(state, tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def read_metadata(path: str) -> dict:
    """The metadata of a handcap weights file, with ``config`` as a NetworkConfig and ``extra`` as a dict."""
    if not os.path.isfile(path):
        raise WeightsError(f"{path}: no such weights file")
    try:
        with safe_open(path, framework="pt") as f:
            metadata = dict(f.metadata() or {})
    except Exception as e:  # safetensors raises its own error types for a bad header
        raise WeightsError(f"{path}: not a safetensors file ({e})") from e
    if metadata.get("format") != FORMAT or "config" not in metadata:
        raise WeightsError(f"{path}: safetensors without handcap metadata (format {metadata.get('format')!r}, "
                           f"expected {FORMAT!r})")
    try:
        metadata["config"] = NetworkConfig.from_dict(json.loads(metadata["config"]))
        metadata["extra"] = json.loads(metadata.get("extra") or "{}")
    except ValueError as e:
        raise WeightsError(f"{path}: bad config in metadata: {e}") from e
    return metadata


def load_weights(path: str, device="cpu") -> tuple[nn.Module, NetworkConfig]:
    """Build the network its config describes, load the weights (as float32), ``eval()`` mode."""
    metadata = read_metadata(path)
    config = metadata["config"]
    model = build_network(config)
    full = model.state_dict()
    expected = {k: full[k] for k in stored_keys(config, full)}
    with safe_open(path, framework="pt") as f:
        state = {key: f.get_tensor(key) for key in f.keys()}
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        raise WeightsError(f"{path}: weights do not fit config {config}: missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]}, wrong shapes {wrong[:5]}")
    stored_vertices = metadata.get("num_vertices")
    hand_layer = getattr(model, "hand_layer", None)
    if stored_vertices and hand_layer is not None and int(stored_vertices) != hand_layer.v_template.shape[0]:
        raise WeightsError(f"{path}: trained with a {stored_vertices}-vertex hand model, but {config.hand_model!r} "
                           f"has {hand_layer.v_template.shape[0]} vertices")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=not config.pretrained_trunk)
    return model.to(device).eval(), config
