"""Hands found in photos of people, against hands annotated by eye (issue 18).

``python -m bench.hand_recall [--mediapipe] [--overlays DIR] [--json OUT]`` scores handcap's photo
hand finder (``core.perception.hand_finder``: people first, then palms on the photo and its tiles) on
the 25 photos of ``../shared/real_images/{people,in_the_wild}`` annotated in
``tests/data/hands_in_photos.json``, and with ``--mediapipe`` MediaPipe Hands alone (0.10.21,
``static_image_mode``, full model, no hand limit beyond ``--mediapipe-max-hands``) on the same photos.

A hand counts as found when a find of the right side (any side where the annotation has none) has the
annotated point inside its landmark box grown by a quarter of its size on every side; each find counts
for one hand at most (greedy, nearest box centre first). Also printed: finds that match no annotation
(unannotated hands or false finds: look at the overlays) and seconds per photo by size.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANNOTATIONS = os.path.join(REPO, "tests", "data", "hands_in_photos.json")
REAL_IMAGES = os.path.join(os.path.dirname(REPO), "shared", "real_images")
SLACK = 0.25                    # of a find's box size, around its landmark box


def annotations(path: str = ANNOTATIONS) -> dict:
    """photo path relative to real_images -> [(point (2,), side or None, note)]."""
    with open(path) as f:
        data = json.load(f)["hands"]
    return {name: [(np.asarray(p, np.float64), side, note) for p, side, note in hands] for name, hands in data.items()}


def match(annotated: list, finds: list[tuple[np.ndarray, str]]) -> list[int]:
    """Which find (index, -1 for none) each annotated hand is matched to. finds: [(box (4,), side)]."""
    pairs = []
    for a, (point, side, _) in enumerate(annotated):
        for f, (box, found_side) in enumerate(finds):
            size = max(box[2] - box[0], box[3] - box[1])
            slack = SLACK * size
            inside = box[0] - slack <= point[0] <= box[2] + slack and box[1] - slack <= point[1] <= box[3] + slack
            if inside and (side is None or side == found_side):
                centre = (box[:2] + box[2:]) / 2
                pairs.append((float(np.linalg.norm(centre - point)), a, f))
    assigned, used = [-1] * len(annotated), set()
    for _, a, f in sorted(pairs):
        if assigned[a] < 0 and f not in used:
            assigned[a], used = f, used | {f}
    return assigned


def score(found: dict, truth: dict) -> dict:
    """found: photo -> [(box, side)]; truth: ``annotations()`` -> counts and per-photo detail."""
    hands = matched = extra = 0
    detail = {}
    for name, annotated in truth.items():
        finds = found.get(name, [])
        assigned = match(annotated, finds)
        hands += len(annotated)
        matched += sum(a >= 0 for a in assigned)
        unmatched_finds = len(finds) - sum(a >= 0 for a in assigned)
        extra += unmatched_finds
        detail[name] = {"hands": len(annotated), "found": sum(a >= 0 for a in assigned), "finds": len(finds),
                        "missed": [annotated[i][2] for i, a in enumerate(assigned) if a < 0]}
    return {"hands": hands, "found": matched, "recall": matched / max(1, hands), "unmatched_finds": extra,
            "photos": detail}


def pinhole_views(equirect: np.ndarray, yaws=(0, 120, 240), fov_deg: float = 70.0, size=(640, 480)) -> list:
    """(H, W, 3) equirectangular panorama -> ordinary photos (pinhole, ``fov_deg`` across, level) looking
    at each yaw (degrees)."""
    import cv2
    width, height = size
    focal = 0.5 * width / np.tan(np.deg2rad(fov_deg) / 2)
    x, y = np.meshgrid(np.arange(width) - width / 2 + 0.5, np.arange(height) - height / 2 + 0.5)
    views = []
    for yaw in yaws:
        azimuth = np.arctan2(x, focal) + np.deg2rad(yaw)
        elevation = np.arctan2(-y, np.hypot(x, focal))
        u = ((azimuth / (2 * np.pi)) % 1.0) * equirect.shape[1]
        v = (0.5 - elevation / np.pi) * equirect.shape[0]
        views.append(cv2.remap(equirect, u.astype(np.float32), v.astype(np.float32), cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_WRAP))
    return views


def photos_without_hands() -> dict:
    """name -> (H, W, 3) uint8 RGB photos with no hand in them, made here: three level 70-degree views of
    each of Blender's bundled world HDRIs (forest, city, courtyard, interior, night, studio, sunrise,
    sunset: landscapes, streets, rooms), tone-mapped; matplotlib's sample portrait (a face); its two
    terrain models rendered as shaded relief (landscapes from above)."""
    import cv2
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    photos = {}
    try:
        import bpy
        worlds = os.path.join(bpy.utils.system_resource("DATAFILES"), "studiolights", "world")
        for name in sorted(os.listdir(worlds)):
            hdr = cv2.imread(os.path.join(worlds, name), cv2.IMREAD_UNCHANGED) if name.endswith(".exr") else None
            if hdr is None:
                continue
            hdr = hdr[:, :, :3].astype(np.float32)
            ldr = np.clip(hdr / (np.percentile(hdr, 97) + 1e-6), 0, 1) ** (1 / 2.2) * 255
            rgb = cv2.cvtColor(ldr.astype(np.uint8), cv2.COLOR_BGR2RGB)
            for k, view in enumerate(pinhole_views(rgb)):
                photos[f"{os.path.splitext(name)[0]} view {k}"] = view
    except ImportError:
        pass
    import matplotlib
    from matplotlib.colors import LightSource
    data = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data")
    face = os.path.join(data, "grace_hopper.jpg")
    if os.path.exists(face):
        photos["face"] = read_rgb(face)
    for name in ("jacksboro_fault_dem.npz", "topobathy.npz"):
        path = os.path.join(data, name)
        if os.path.exists(path):
            with np.load(path) as npz:
                elevation = npz["elevation" if "elevation" in npz.files else "topo"].astype(np.float64)
            shaded = LightSource(azdeg=315, altdeg=45).shade(elevation, cmap=matplotlib.colormaps["gist_earth"],
                                                              vert_exag=0.05, blend_mode="soft")
            rgb = (shaded[:, :, :3] * 255).astype(np.uint8)
            photos[f"terrain {name.split('_')[0].split('.')[0]}"] = cv2.resize(rgb, (640, 480), interpolation=cv2.INTER_CUBIC)
    return photos


def read_rgb(path: str) -> np.ndarray:
    import cv2
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def handcap_finds(photos: dict, overlays: str = "") -> tuple[dict, dict]:
    """photo -> [(box, side)] by handcap's photo detector (``core.engine.detect.HandDetector``), and
    photo -> seconds."""
    from core.engine.detect import HandDetector
    found, seconds = {}, {}
    with HandDetector(max_hands=None) as detector:
        detector.detect(photos[next(iter(photos))])              # load the networks before timing
        for name, rgb in photos.items():
            start = time.perf_counter()
            detections = detector.detect(rgb, search=True)
            seconds[name] = time.perf_counter() - start
            found[name] = [(d.box, d.side) for d in detections]
            if overlays:
                write_overlay(os.path.join(overlays, name.replace("/", "_").replace(".jpg", ".png")), rgb, detections)
    return found, seconds


def mediapipe_finds(photos: dict, max_hands: int = 64) -> dict:
    """photo -> [(box, side)] by MediaPipe Hands alone (static images, full model); its labels assume a
    mirrored image, so "Left" is the person's right hand."""
    import mediapipe as mp
    found = {}
    with mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=max_hands, model_complexity=1,
                                  min_detection_confidence=0.5) as hands:
        for name, rgb in photos.items():
            result = hands.process(rgb)
            h, w = rgb.shape[:2]
            out = []
            for landmarks, handedness in zip(result.multi_hand_landmarks or [], result.multi_handedness or []):
                points = np.array([[p.x * w, p.y * h] for p in landmarks.landmark])
                side = "right" if handedness.classification[0].label == "Left" else "left"
                out.append((np.concatenate([points.min(0), points.max(0)]), side))
            found[name] = out
    return found


def write_overlay(path: str, rgb: np.ndarray, detections) -> None:
    """The photo with each find's landmarks, box, side and person drawn (blue: right, red: left)."""
    import cv2
    from core.hand_model.model import KEYPOINT_BONES as HAND_BONES
    image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    thickness = max(1, round(max(image.shape[:2]) / 600))
    for d in detections:
        colour = (255, 128, 0) if d.side == "right" else (0, 0, 255)
        points = np.round(d.keypoints_2d).astype(int)
        for a, b in HAND_BONES:
            cv2.line(image, tuple(points[a]), tuple(points[b]), colour, thickness, cv2.LINE_AA)
        x0, y0 = np.round(d.box[:2]).astype(int)
        label = f"{'R' if d.side == 'right' else 'L'}{'' if d.person < 0 else d.person}"
        cv2.putText(image, label, (x0, max(10, y0 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, colour, thickness)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    cv2.imwrite(path, image)


SIZE_BUCKETS = ((0, 500, "up to 500 px"), (501, 900, "501-900 px"), (901, 100_000, "over 900 px"))   # long side


def run(options) -> dict:
    """The ``people`` section of ``python -m bench``: recall of handcap and of MediaPipe Hands alone on
    the annotated photos (``--quick``: the first 5), handcap's seconds per photo (``options.repeat``
    timed passes over the photos after a warm-up) grouped by the photo's long side."""
    truth = annotations()
    if not os.path.isdir(options.real_images):
        return {"skipped": f"{options.real_images} is not here"}
    names = list(truth)[:5] if options.quick else list(truth)
    truth = {n: truth[n] for n in names}
    photos = {n: read_rgb(os.path.join(options.real_images, n)) for n in names}
    passes = [handcap_finds(photos) for _ in range(max(1, options.repeat))]
    result = {"handcap": score(passes[0][0], truth), "sizes": {}}
    for low, high, label in SIZE_BUCKETS:
        chosen = [n for n in names if low <= max(photos[n].shape[:2]) <= high]
        if chosen:
            result["sizes"][label] = {"photos": len(chosen),
                                      "seconds": [sum(p[1][n] for n in chosen) / len(chosen) for p in passes]}
    try:
        result["mediapipe_hands"] = score(mediapipe_finds(photos), truth)
    except ImportError:
        pass
    return result


def rows(result: dict) -> list:
    from .common import Row, skipped, stat
    if "skipped" in result:
        return [skipped("people", "hands in photos of people", result["skipped"])]
    h, mp = result["handcap"], result.get("mediapipe_hands")
    out = [Row("people", f"hands found, side right ({h['hands']} annotated in {len(h['photos'])} photos)",
               f"{h['found']} ({100 * h['recall']:.0f}%)",
               reference=f"MediaPipe Hands alone {mp['found']} ({100 * mp['recall']:.0f}%)" if mp else "MediaPipe not installed",
               ratio=h["found"] / mp["found"] if mp and mp["found"] else None)]
    for label, entry in result["sizes"].items():
        out.append(Row("people", f"seconds per photo, long side {label} ({entry['photos']} photos)",
                       stat(entry["seconds"], "s")))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hand_recall", description=__doc__.split("\n\n")[0] + " "
                                     "Prints recall (side right) for handcap, and for MediaPipe Hands alone with --mediapipe.")
    parser.add_argument("--mediapipe", action="store_true", help="also score MediaPipe Hands alone (needs mediapipe)")
    parser.add_argument("--mediapipe-max-hands", type=int, default=64, help="MediaPipe's max_num_hands (default 64)")
    parser.add_argument("--overlays", default="", help="write each photo's finds drawn on it into this folder")
    parser.add_argument("--json", default="", help="write the scores here")
    args = parser.parse_args(argv)
    if not os.path.isdir(REAL_IMAGES):
        print(f"{REAL_IMAGES} is not here", file=sys.stderr)
        return 1
    truth = annotations()
    photos = {name: read_rgb(os.path.join(REAL_IMAGES, name)) for name in truth}
    found, seconds = handcap_finds(photos, args.overlays)
    report = {"handcap": score(found, truth), "seconds": seconds}
    if args.mediapipe:
        report["mediapipe_hands"] = score(mediapipe_finds(photos, args.mediapipe_max_hands), truth)
    for who in ("handcap", "mediapipe_hands"):
        if who in report:
            s = report[who]
            print(f"{who}: {s['found']} of {s['hands']} annotated hands found with the side right "
                  f"({100 * s['recall']:.1f}%), {s['unmatched_finds']} finds matching no annotation")
    for name, d in report["handcap"]["photos"].items():
        h, w = photos[name].shape[:2]
        mp_found = report.get("mediapipe_hands", {}).get("photos", {}).get(name, {}).get("found", "-")
        print(f"  {name} {w}x{h} {seconds[name]:.2f} s: handcap {d['found']}/{d['hands']} (finds {d['finds']}), "
              f"mediapipe {mp_found}/{d['hands']}" + (f"; missed: {'; '.join(d['missed'])}" if d["missed"] else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
