"""Accuracy of each shipped model: 3D on held-out synthetic renders, 2D agreement with MediaPipe on real photos.

accuracy:  ``training.evaluate``'s protocol (crops around the true keypoints, Procrustes-aligned
           3D errors) on the first N renders of the held-out synthetic set (``synthetic:N``),
           beside the same network untrained (its mean hand) as the reference.
agreement: the engine on each photo of ../shared/real_images (freihand_eval/*.jpg with their
           intrinsics, in_the_wild/*.jpg), its projected 2D keypoints against MediaPipe's
           landmarks (static mode, no search pass) where MediaPipe finds the hand; hands matched
           by the overlap of the engine's detection box with MediaPipe's landmark box; PCK at 0.1 and 0.2 of the hand's size (the longer side of MediaPipe's
           landmark box). The engine's fit pulls its keypoints onto those very landmarks, so
           the "network only" rows (no fit: the network's own hand, placed by its camera) are
           the independent check.
"""

from __future__ import annotations

import glob
import os

import numpy as np

from .common import MODELS, Options, Row, shipped_weights, skipped

PCK_FRACTIONS = (0.1, 0.2)
MATCH_IOU = 0.3
IMAGE_FOLDERS = ("freihand_eval", "in_the_wild")


# ------------------------------------------------------------------------------- accuracy

def run_accuracy(options: Options) -> dict:
    import torch

    from core.networks import build_network, load_weights
    from training.evaluate import CropSamples, evaluate_crops, make_eval_transform, open_synthetic

    count = options.accuracy_count
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    amp = device.type == "cuda"
    synthetic = open_synthetic(str(count))
    raw = [synthetic[i] for i in range(len(synthetic))]          # rendered once, used by every model
    result = {"data": f"synthetic:{count} (held-out split)", "device": str(device), "models": {}}
    keys = ("count", "pa_mpjpe_mm", "auc_0_50", "auc_20_50", "pa_mpvpe_mm", "f5", "f15", "pck_2d")

    def evaluate(model, config, name):
        if amp:
            model = model.to(memory_format=torch.channels_last)
        scores = evaluate_crops(model, CropSamples(raw, make_eval_transform(config.input_size, config.input_normalization, config.upright_crops)), 32, device, amp, desc=name)
        return {k: scores[k] for k in keys if k in scores}

    for name in MODELS:
        weights = shipped_weights(name)
        if weights is None:
            result["models"][name] = {"skipped": "no weights"}
            continue
        model, config = load_weights(weights, device)
        entry = {"network": f"{config.arch} {config.backbone} {config.input_size} px", **evaluate(model, config, name)}
        torch.manual_seed(0)
        entry["untrained"] = evaluate(build_network(config).to(device).eval(), config, f"{name} untrained")
        result["models"][name] = entry
    return result


def accuracy_rows(result: dict) -> list:
    out = []
    for name, m in result["models"].items():
        if "skipped" in m:
            out.append(skipped("accuracy", f"{name}: {result['data']}", m["skipped"]))
            continue
        base = m["untrained"]
        for key, label, unit in (("pa_mpjpe_mm", "PA-MPJPE", "mm"), ("auc_0_50", "3D PCK AUC 0-50 mm", ""),
                                 ("auc_20_50", "3D PCK AUC 20-50 mm", "")):
            out.append(Row("accuracy", f"{name} ({m['network']}): {label}, {result['data']}", m[key], unit,
                           reference=f"same network untrained {base[key]:.3g}", ratio=m[key] / base[key]))
    return out


# ------------------------------------------------------------------------------ agreement

def box_of(points: np.ndarray) -> np.ndarray:
    return np.concatenate([points.min(0), points.max(0)])


def match_hands(reference: list, boxes: list, min_iou: float = MATCH_IOU) -> list:
    """Greedy pairs (i, j) of reference landmark sets (21, 2) and the engine's hands by their (4,)
    detection boxes: by the overlap of the boxes, best first, each used once, IoU >= min_iou."""
    from core.engine.detect import box_iou
    pairs = sorted(((box_iou(box_of(r), b), i, j) for i, r in enumerate(reference) for j, b in enumerate(boxes)),
                   reverse=True)
    used_r, used_f, matched = set(), set(), []
    for iou, i, j in pairs:
        if iou >= min_iou and i not in used_r and j not in used_f:
            matched.append((i, j))
            used_r.add(i)
            used_f.add(j)
    return matched


def pck(reference: list, found: list, fractions=PCK_FRACTIONS) -> dict:
    """Per-keypoint distance over the hand's size (longer side of the reference box), pooled over hands."""
    if not reference:
        return {f"pck_{t}": None for t in fractions} | {"mean_error": None}
    errors = np.concatenate([np.linalg.norm(f - r, axis=1) / max(1.0, float((r.max(0) - r.min(0)).max()))
                             for r, f in zip(reference, found)])
    return {f"pck_{t}": float((errors <= t).mean()) for t in fractions} | {"mean_error": float(errors.mean())}


def real_images(folder: str) -> list:
    return sorted(p for sub in IMAGE_FOLDERS for p in glob.glob(os.path.join(folder, sub, "*.jpg")))


def image_intrinsics(path: str, width: int, height: int) -> np.ndarray:
    """The photo's NNN_K.npy beside it when there is one, else the engine's default."""
    from core.engine.run import intrinsics
    k_file = os.path.splitext(path)[0] + "_K.npy"
    return intrinsics(width, height, K_file=k_file if os.path.isfile(k_file) else None)


def agreement(weights: str, paths: list, landmarks: dict, refine: bool) -> dict:
    """The engine (``refine``: with its fit, else the network's own hand) on each photo against
    MediaPipe's ``landmarks`` (path -> [(21, 2)])."""
    from core.engine.pipeline import Engine, EngineOptions
    from core.engine.run import read_image

    engine = Engine(EngineOptions(weights=weights, refine=refine))
    try:
        reference, found, hands = [], [], 0
        for path in paths:
            rgb = read_image(path)
            estimates = engine.estimate_frames([rgb], image_intrinsics(path, rgb.shape[1], rgb.shape[0]))[0]
            hands += len(estimates)
            for i, j in match_hands(landmarks[path], [h.box for h in estimates]):
                reference.append(landmarks[path][i])
                found.append(estimates[j].keypoints_2d.astype(np.float64))
    finally:
        engine.close()
    total = sum(len(v) for v in landmarks.values())
    return {"matched": len(reference), "reference_hands": total, "engine_hands": hands, **pck(reference, found)}


def run_agreement(options: Options) -> dict:
    from core.engine.detect import HandDetector
    from core.engine.run import read_image

    paths = real_images(options.real_images)
    if not paths:
        return {"skipped": f"no photos in {options.real_images}/{{{','.join(IMAGE_FOLDERS)}}}"}
    if options.quick:
        paths = paths[:2] + paths[-1:]
    with HandDetector(max_hands=4, min_confidence=0.3) as detector:
        landmarks = {p: [d.keypoints_2d for d in detector.detect(read_image(p))] for p in paths}
    result = {"images": len(paths), "folder": options.real_images, "models": {}}
    for name in MODELS:
        weights = shipped_weights(name)
        result["models"][name] = ({"engine": agreement(weights, paths, landmarks, refine=True),
                                   "network_only": agreement(weights, paths, landmarks, refine=False)}
                                  if weights else {"skipped": "no weights"})
    return result


def agreement_rows(result: dict) -> list:
    if "skipped" in result:
        return [skipped("agreement", "2D agreement with MediaPipe on real photos", result["skipped"])]
    out = []
    for name, m in result["models"].items():
        if "skipped" in m:
            out.append(skipped("agreement", f"{name}: 2D agreement with MediaPipe", m["skipped"]))
            continue
        for variant, label in (("engine", "engine (fit)"), ("network_only", "network only")):
            r = m[variant]
            for t in PCK_FRACTIONS:
                if r[f"pck_{t}"] is None:
                    continue
                out.append(Row("agreement", f"{name}, {label}: PCK@{t} of hand size vs MediaPipe landmarks, "
                               f"{r['matched']}/{r['reference_hands']} MediaPipe hands matched, {result['images']} photos",
                               r[f"pck_{t}"]))
    return out
