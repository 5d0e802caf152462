"""Evaluate trained hand networks on held-out data; write the metrics as JSON (+ a PCK plot).

    python -m training.evaluate --weights W [--weights W2 ...] --data SPEC --json OUT [--plot PCK.png] [--reference] [--engine]
    python -m training.evaluate --video DIR [--json OUT] [--smoothing S] [--device D]   (video benchmark:
                                training/video_eval.py)
    python -m training.evaluate --data multiview:DIR --views 1 2 3 [--json OUT] [--device D]   (multi-view:
                                the engine with 1, 2, 3 calibrated views, training/multiview_eval.py)

SPEC:
  synthetic:N   N held-out synthetic renders (training.synth.SyntheticHands, split "heldout", fixed seed)
  freihand:DIR  the evaluation split of FreiHAND in DIR (official layout, training.datasets.FreiHAND)
  multiview:DIR samples of python -m training.synth.multiview, scored with 1, 2, ... views (--views)
  images:DIR    photos without ground truth: the network sees each whole image, padded to a square
                and resized (no hand detection; each image is assumed to show one right hand), and
                overlay PNGs of its predicted keypoints (and mesh) go to <JSON stem>_overlays/<model>/.

Protocol with ground truth: each raw sample (training/sample.py) becomes a crop sample through
``training.augment.EvalTransform`` at the network's input size, normalisation and crop angle (a crop
around the GT keypoints, turned upright by them for upright-crop networks; left hands flipped to
right hands). Predictions are compared with the crop sample's targets in that
right-hand frame: for a left hand both are the mirror images of the real hand, so no prediction
is flipped back, and Procrustes-aligned 3D metrics equal those in the original frame. 2D PCK
compares projected keypoints (and HAMR's heatmap keypoints) in crop coordinates, threshold 5 %
of the crop side.

JSON: {"data": SPEC, "device": ..., "models": [one entry per --weights, in order]}. An entry has
name, weights, the network config (arch, backbone, input_size, ...), count (samples with 3D
ground truth), pa_mpjpe_mm, auc_0_50, auc_20_50, pck_curve (0-50 mm), rr_mpjpe_mm and rr_auc_20_50
(root-relative, without alignment: the global orientation counts too), pck_2d (+ pck_2d_heatmaps),
and pa_mpvpe_mm, f5, f15, count_mesh when the model and the data have meshes of one topology.
``--reference`` adds an entry (and curve) for ``training.reference.MeanHand``: one fixed hand, the
mean training pose, the score of a network that sees nothing of the fingers.
``--engine`` adds the whole engine as ``handcap estimate`` runs it on each full photo with that
photo's intrinsics, and its detector's own landmarks as a reference (``training.engine_eval``: it
adds rr_median_mm, err_2d_px and per-joint errors in the photo's pixels and the camera's frame).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from blender_addon.output_files import write_bytes
from core.crops import normalize_image
from core.engine.overlay import draw_keypoints
from core.networks import keypoints_from_heatmaps, load_weights
from core.networks.camera import project
from core.networks.weights import WeightsError
from training import metrics
from training.plots import pck_plot_png

SYNTHETIC_SEED = 20190  # the held-out synthetic set is the same every time
PCK_2D_FRACTION = 0.05  # of the crop side
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class SpecError(ValueError):
    """A --data SPEC that does not name a usable data source."""


def parse_spec(spec: str) -> tuple[str, str]:
    """'synthetic:N' | 'freihand:DIR' | 'multiview:DIR' | 'images:DIR' -> (kind, value), checked."""
    kind, sep, value = spec.partition(":")
    if not sep or kind not in ("synthetic", "freihand", "multiview", "images") or not value:
        raise SpecError(f"bad --data {spec!r}: use synthetic:N, freihand:DIR, multiview:DIR or images:DIR")
    if kind == "synthetic" and not (value.isdigit() and int(value) > 0):
        raise SpecError(f"bad --data {spec!r}: N in synthetic:N must be a positive integer")
    if kind != "synthetic" and not os.path.isdir(value):
        raise SpecError(f"bad --data {spec!r}: {value!r} is not a directory")
    return kind, value


def open_synthetic(value: str):
    from training.synth import SyntheticHands
    return SyntheticHands(count=int(value), seed=SYNTHETIC_SEED, split="heldout")


def open_freihand(value: str):
    from training.datasets import FreiHAND
    return FreiHAND(value, split="evaluation")


RAW_SOURCES = {"synthetic": open_synthetic, "freihand": open_freihand}
"""kind -> function(value) returning a map-style dataset of raw samples."""


def make_eval_transform(size: int, normalization: str = "imagenet", upright: bool = False):
    """Raw sample -> crop sample of ``size`` pixels (training.augment.EvalTransform)."""
    from training.augment import EvalTransform
    return EvalTransform(size, normalization=normalization, upright=upright)


class CropSamples(Dataset):
    """A raw dataset seen through a transform."""

    def __init__(self, raw, transform):
        self.raw, self.transform = raw, transform

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, index: int) -> dict:
        return self.transform(self.raw[index])


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (``output_files.write_bytes``), making its folder first."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_bytes(path, data)


def run_network(model: torch.nn.Module, images: torch.Tensor, device: torch.device, amp: bool) -> dict:
    """Forward (B, 3, S, S) normalised images; bf16 autocast and channels-last when ``amp`` (CUDA)."""
    images = images.to(device, non_blocking=True)
    if amp:
        images = images.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        return model(images)


def evaluate_crops(model: torch.nn.Module, crops: Dataset, batch_size: int, device: torch.device, amp: bool,
                   workers: int = 0, desc: str = "") -> dict:
    """Metrics of one network on a dataset of crop samples (see the module doc for the protocol)."""
    loader = DataLoader(crops, batch_size=batch_size, num_workers=workers, pin_memory=device.type == "cuda",
                        multiprocessing_context="spawn" if workers else None)  # the renderer's EGL cannot fork
    kp_errors, joints = [], {"pred": [], "gt": []}
    points_2d, mesh = {"pred": [], "heatmaps": [], "gt": []}, {"pa_mpvpe_mm": [], "f5": [], "f15": []}
    with tqdm(total=len(crops), desc=desc, unit="img", file=sys.stderr) as progress:
        for batch in loader:
            out = run_network(model, batch["image"], device, amp)
            has_3d = batch["has_3d"].bool().numpy()
            joints["pred"].append(out["joints_3d"].float().cpu().numpy()[has_3d])
            joints["gt"].append(batch["joints_3d"].numpy()[has_3d])
            kp_errors.append(metrics.pa_errors_mm(joints["pred"][-1], joints["gt"][-1]))
            points_2d["pred"].append(out["keypoints_2d"].float().cpu().numpy())
            points_2d["gt"].append(batch["keypoints_2d"].numpy())
            if out.get("heatmaps"):
                points_2d["heatmaps"].append(keypoints_from_heatmaps(out["heatmaps"][-1])[0].cpu().numpy())
            has_mesh = batch["has_mesh"].bool().numpy()
            if "vertices" in out and has_mesh.any() and out["vertices"].shape[1:] == batch["vertices"].shape[1:]:
                scores = metrics.mesh_scores(out["vertices"].float().cpu().numpy()[has_mesh],
                                             batch["vertices"].numpy()[has_mesh])
                for key, value in scores.items():
                    mesh[key].append(value)
            progress.update(len(has_3d))
    kp_errors = np.concatenate(kp_errors) if kp_errors else np.zeros((0, 21))
    result = {"count": len(kp_errors)}
    if len(kp_errors):
        result.update(metrics.keypoint_summary(kp_errors))
        result.update(metrics.root_relative_summary(np.concatenate(joints["pred"]), np.concatenate(joints["gt"])))
    if points_2d["gt"]:
        gt_2d, threshold = np.concatenate(points_2d["gt"]), 2 * PCK_2D_FRACTION  # the crop spans [-1, 1]
        result["pck_2d"] = metrics.pck_2d(np.concatenate(points_2d["pred"]), gt_2d, threshold)
        if points_2d["heatmaps"]:
            result["pck_2d_heatmaps"] = metrics.pck_2d(np.concatenate(points_2d["heatmaps"]), gt_2d, threshold)
        result["pck_2d_threshold"] = f"{PCK_2D_FRACTION} of the crop side"
    if mesh["f5"]:
        result.update({key: float(np.concatenate(values).mean()) for key, values in mesh.items()})
        result["count_mesh"] = int(sum(len(v) for v in mesh["f5"]))
    return result


def load_square(path: str, size: int, normalization: str = "imagenet") -> tuple[torch.Tensor, np.ndarray, tuple[int, int, int]]:
    """An image file -> normalised (3, size, size) tensor of the whole image padded to a square,
    the BGR image, and (side, x0, y0): the square's side and the image's offset in it, pixels."""
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise SpecError(f"{path}: cannot read the image")
    h, w = bgr.shape[:2]
    side = max(h, w)
    x0, y0 = (side - w) // 2, (side - h) // 2
    square = np.zeros((side, side, 3), np.uint8)
    square[y0:y0 + h, x0:x0 + w] = bgr
    rgb = cv2.cvtColor(cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    image = normalize_image(rgb, normalization)
    return image, bgr, (side, x0, y0)


def crop_to_pixels(points: torch.Tensor, side: int, x0: int, y0: int) -> np.ndarray:
    """(N, 2) crop coordinates of the padded square of ``load_square`` -> (N, 2) pixels of the image."""
    return (points.float().cpu().numpy() + 1) / 2 * side - np.array([x0, y0])


def draw_overlay(bgr: np.ndarray, keypoints_px: np.ndarray, mesh_px: np.ndarray = None, faces: np.ndarray = None) -> np.ndarray:
    """The image with the mesh (V, 2) pixels shaded in, and the 21 keypoints (21, 2) pixels as a skeleton."""
    image = bgr.copy()
    if mesh_px is not None:
        mask = np.zeros(image.shape[:2], np.uint8)
        for triangle in np.round(mesh_px[faces]).astype(np.int32):
            cv2.fillConvexPoly(mask, triangle, 255)
        shaded = (0.5 * image + 0.5 * np.array([255, 190, 60])).astype(np.uint8)
        image[mask > 0] = shaded[mask > 0]
    draw_keypoints(image, keypoints_px)
    return image


def list_images(folder: str) -> list[str]:
    """The image files directly in ``folder``, sorted; SpecError when there are none."""
    paths = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        raise SpecError(f"bad --data images:{folder}: no {'/'.join(IMAGE_EXTENSIONS)} files in it")
    return paths


def estimate_images(model: torch.nn.Module, config, paths: list[str], out_dir: str, batch_size: int,
                    device: torch.device, amp: bool, desc: str = "") -> dict:
    """Run the network on each image file and write overlay PNGs (same names, .png) to ``out_dir``."""
    faces = model.hand_layer.faces.cpu().numpy() if hasattr(model, "hand_layer") else None
    with tqdm(total=len(paths), desc=desc, unit="img", file=sys.stderr) as progress:
        for start in range(0, len(paths), batch_size):
            loaded = [load_square(p, config.input_size, config.input_normalization)
                      for p in paths[start:start + batch_size]]
            out = run_network(model, torch.stack([image for image, _, _ in loaded]), device, amp)
            for i, (path, (_, bgr, (side, x0, y0))) in enumerate(zip(paths[start:], loaded)):
                keypoints = crop_to_pixels(out["keypoints_2d"][i], side, x0, y0)
                mesh = None
                if faces is not None:
                    projected = project(out["vertices"][i:i + 1].float(), out["camera"][i:i + 1].float())[0]
                    mesh = crop_to_pixels(projected, side, x0, y0)
                png = cv2.imencode(".png", draw_overlay(bgr, keypoints, mesh, faces))[1].tobytes()
                write_atomic(os.path.join(out_dir, os.path.splitext(os.path.basename(path))[0] + ".png"), png)
            progress.update(len(loaded))
    return {"count": len(paths), "overlays": out_dir,
            "crop": "whole image padded to a square and resized; assumed to show one right hand"}


def entry_names(paths: list[str]) -> list[str]:
    """File stems, or the paths themselves where two stems collide."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    return [stem if stems.count(stem) == 1 else path for stem, path in zip(stems, paths)]


def evaluate_one(path: str, name: str, kind: str, raw, images: list, args, device: torch.device,
                 amp: bool) -> dict:
    """The JSON entry of one weights file: its config and metrics (or overlays for images:DIR)."""
    model, config = load_weights(path, device)
    if amp:
        model = model.to(memory_format=torch.channels_last)
    entry = {"name": name, "weights": path, **config.to_dict()}
    if kind == "images":
        out_dir = os.path.join(os.path.splitext(os.path.abspath(args.json))[0] + "_overlays", name.replace(os.sep, "_"))
        entry.update(estimate_images(model, config, images, out_dir, args.batch_size, device, amp, desc=name))
    else:
        crops = CropSamples(raw, make_eval_transform(config.input_size, config.input_normalization, config.upright_crops))
        entry.update(evaluate_crops(model, crops, args.batch_size, device, amp, args.workers, desc=name))
    print_entry(entry)
    return entry


def print_entry(entry: dict) -> None:
    """One line per evaluated model: its name, count and the headline metrics it has."""
    shown = [f"{k}={entry[k]:.4g}" for k in ("pa_mpjpe_mm", "auc_0_50", "auc_20_50", "pa_mpvpe_mm", "f5", "f15",
                                              "rr_mpjpe_mm", "rr_median_mm", "pck_2d", "err_2d_px") if k in entry]
    print(f"{entry['name']}: count={entry['count']}", *([f"found={entry['found']}"] if "found" in entry else []), *shown,
          *([f"overlays in {entry['overlays']}"] if "overlays" in entry else []), sep=", ")


def evaluate_reference(raw, args, device: torch.device) -> dict:
    """The JSON entry of ``training.reference.MeanHand`` (its crops as a 96-pixel network's; it ignores them)."""
    from training.reference import NAME, MeanHand
    entry = {"name": NAME, "weights": None, "arch": "reference"}
    entry.update(evaluate_crops(MeanHand().to(device), CropSamples(raw, make_eval_transform(96)), args.batch_size,
                                device, False, args.workers, desc="reference"))
    print_entry(entry)
    return entry


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n\n")[0],
                                     epilog="SPEC: synthetic:N | freihand:DIR | multiview:DIR | images:DIR (see the module doc)")
    parser.add_argument("--weights", action="append", default=[], metavar="W",
                        help="a .safetensors weights file; repeat to compare several")
    parser.add_argument("--data", metavar="SPEC", help="synthetic:N, freihand:DIR, multiview:DIR or images:DIR")
    parser.add_argument("--views", type=int, nargs="+", metavar="K",
                        help="with --data multiview:DIR: the view counts to score, each with the first K views "
                             "(default: 1 2 3)")
    parser.add_argument("--json", metavar="OUT", help="where to write the metrics (JSON; with --video, default "
                                                      "DIR/video_eval.json)")
    parser.add_argument("--video", metavar="DIR",
                        help="instead: run handcap estimate on the rendered clips in DIR (python -m training.synth "
                             "--video DIR) and score them against their ground truth (training/video_eval.py)")
    parser.add_argument("--plot", metavar="PNG", help="also plot the 3D PCK curves of all models here")
    parser.add_argument("--reference", action="store_true",
                        help="also score one fixed hand, the mean training pose (the floor a network must beat)")
    parser.add_argument("--engine", action="store_true",
                        help="also score the whole engine (detection, network, fit) on each full photo with its "
                             "intrinsics, and the detector's own world and image landmarks beside it")
    parser.add_argument("--smoothing", type=float, metavar="S",
                        help="with --video: handcap estimate --smoothing S (0: per-frame results; default: its own)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    parser.add_argument("--workers", type=int, default=0, help="data-loading processes (default 0)")
    parser.add_argument("--fp32", action="store_true", help="on CUDA, no bf16 autocast")
    return parser


def evaluate_video(args, parser) -> int:
    """--video DIR: the video benchmark; prints its table, writes its JSON."""
    from training.video_eval import evaluate_videos, table
    if args.data or args.weights or args.reference or args.engine or args.plot:
        parser.error("--video takes only --json, --smoothing and --device")
    if not os.path.isdir(args.video):
        parser.error(f"--video {args.video}: no such folder")
    try:
        result = evaluate_videos(args.video, device=args.device or "auto", smoothing=args.smoothing)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(table(result))
    path = args.json or os.path.join(args.video, "video_eval.json")
    write_atomic(path, (json.dumps(result, indent=1) + "\n").encode())
    print(f"wrote {path}")
    return 0


def evaluate_multiview_data(args, parser, folder: str) -> int:
    """--data multiview:DIR: the engine with 1, 2, 3... views; prints its table, writes its JSON."""
    from training.multiview_eval import evaluate_multiview, table
    if args.weights or args.reference or args.engine or args.plot:
        parser.error("--data multiview:DIR takes only --views, --json and --device")
    views = args.views or [1, 2, 3]
    if min(views) < 1:
        parser.error("--views: view counts are at least 1")
    try:
        result = evaluate_multiview(folder, sorted(set(views)), device=args.device or "auto")
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(table(result))
    path = args.json or os.path.join(folder, "multiview_eval.json")
    write_atomic(path, (json.dumps(result, indent=1) + "\n").encode())
    print(f"wrote {path}")
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.video:
        return evaluate_video(args, parser)
    if args.views and not (args.data or "").startswith("multiview:"):
        parser.error("--views goes with --data multiview:DIR")
    if args.data and args.data.startswith("multiview:"):
        try:
            _, folder = parse_spec(args.data)
        except SpecError as e:
            parser.error(str(e))
        return evaluate_multiview_data(args, parser, folder)
    if args.smoothing is not None:
        parser.error("--smoothing goes with --video")
    if not args.data or not args.json:
        parser.error("give --data SPEC and --json OUT (or --video DIR)")
    try:
        kind, value = parse_spec(args.data)
        images = list_images(value) if kind == "images" else None
    except SpecError as e:
        parser.error(str(e))
    if not args.weights and not args.reference and not args.engine:
        parser.error("give --weights (one or more), --reference or --engine")
    for flag in ("reference", "engine"):
        if getattr(args, flag) and kind == "images":
            parser.error(f"--{flag} needs data with ground truth (synthetic:N or freihand:DIR)")
    if args.plot and kind == "images":
        parser.error("--plot needs data with ground truth (synthetic:N or freihand:DIR)")
    missing = [w for w in args.weights if not os.path.isfile(w)]
    if missing:
        parser.error(f"no such weights file: {', '.join(missing)}")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    amp = device.type == "cuda" and not args.fp32
    raw = RAW_SOURCES[kind](value) if kind in RAW_SOURCES else None
    entries = []
    try:
        for path, name in zip(args.weights, entry_names(args.weights)):
            entries.append(evaluate_one(path, name, kind, raw, images, args, device, amp))
    except (WeightsError, SpecError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.reference:
        entries.append(evaluate_reference(raw, args, device))
    if args.engine:
        from training.engine_eval import evaluate_engine
        for entry in evaluate_engine(raw, device.type):
            print_entry(entry)
            entries.append(entry)
    write_atomic(args.json, (json.dumps({"data": args.data, "device": str(device), "models": entries}, indent=1)
                             + "\n").encode())
    if args.plot:
        curves = [{"label": e["name"], **e["pck_curve"], "auc": e["auc_0_50"]} for e in entries if "pck_curve" in e]
        write_atomic(args.plot, pck_plot_png(curves))
    return 0


if __name__ == "__main__":
    sys.exit(main())
