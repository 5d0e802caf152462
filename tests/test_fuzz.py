"""Fuzzing the inputs (issue 21): random corruptions of a real photo, a real capture file and a
short video -> never a traceback, never a hang, never a partial file.

Seeded and in-process: one engine (a user box, so detection's search passes do not dominate)
estimates every corrupted photo and video; every corrupted capture file goes through the loader
that `handcap blend` and the add-on use. Each case must end with one result or one error line
naming the input, within CASE_SECONDS; the output folder then holds only complete, readable files.

The default run is short (300 cases, well under a minute on 2 idle cores); ``HANDCAP_FUZZ=N`` multiplies the number of cases by N
(``HANDCAP_FUZZ=10 pytest tests/test_fuzz.py`` for a long run), ``HANDCAP_FUZZ_SEED`` changes the seed.
"""

from __future__ import annotations

import io
import os
import signal
import time
import zipfile

import cv2
import numpy as np
import pytest

from blender_addon.capture_format import CaptureError, load_capture
from blender_addon.output_files import is_temporary

from .conftest import REPO

DEMO = os.path.join(REPO, "core", "assets", "demo_hand.jpg")
SCALE = int(os.environ.get("HANDCAP_FUZZ", "1"))
SEED = int(os.environ.get("HANDCAP_FUZZ_SEED", "21"))
PHOTO_CASES, CAPTURE_CASES, VIDEO_CASES = 48 * SCALE, 240 * SCALE, 12 * SCALE
CASE_SECONDS = 60                   # a case taking longer counts as a hang
EXTENSIONS = (".jpg", ".png", ".mp4", ".avi", ".npz", ".webp", ".tif")


class CaseTimeout(BaseException):
    """Raised in the test by the watchdog (a BaseException: the engine's catch-all must not eat it)."""


class watchdog:
    """``with watchdog(seconds, case):`` -- CaseTimeout if the block runs longer (main thread only)."""

    def __init__(self, seconds: float, case: str):
        self.seconds, self.case = seconds, case

    def _fire(self, signum, frame):
        raise CaseTimeout(f"{self.case}: still running after {self.seconds} s")

    def __enter__(self):
        self.before = signal.signal(signal.SIGALRM, self._fire)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.before)


# --------------------------------------------------------------------------- corruptions

def corrupt_bytes(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One random byte-level corruption of ``data``: (what was done, the new bytes)."""
    kind = rng.choice(["truncate", "flip", "zero_range", "random_range", "insert", "header"])
    b = bytearray(data)
    n = len(b)
    if kind == "truncate":
        cut = int(rng.integers(0, n))
        return f"truncate@{cut}", bytes(b[:cut])
    if kind == "flip":
        spots = rng.integers(0, n, int(rng.integers(1, 64)))
        for p in spots:
            b[p] ^= int(rng.integers(1, 256))
        return f"flip x{len(spots)}", bytes(b)
    start = int(rng.integers(0, n))
    length = int(rng.integers(1, max(2, n // 4)))
    if kind == "zero_range":
        b[start:start + length] = bytes(len(b[start:start + length]))
        return f"zero {start}+{length}", bytes(b)
    if kind == "random_range":
        b[start:start + length] = rng.integers(0, 256, len(b[start:start + length]), np.uint8).tobytes()
        return f"random {start}+{length}", bytes(b)
    if kind == "insert":
        return f"insert@{start}", bytes(b[:start]) + rng.integers(0, 256, length, np.uint8).tobytes() + bytes(b[start:])
    head = min(n, int(rng.integers(1, 64)))                # the header, where sizes and formats live
    b[:head] = rng.integers(0, 256, head, np.uint8).tobytes()
    return f"header {head}", bytes(b)


def odd_photo(rng: np.random.Generator) -> tuple[str, bytes, str]:
    """A well-formed image of an odd shape or pixel type: (what, bytes, extension)."""
    base = cv2.imread(DEMO)
    kind = rng.choice(["tiny", "line", "column", "gray", "rgba", "deep", "float_tif", "thin_tall", "black"])
    if kind == "tiny":
        image, ext = base[:int(rng.integers(1, 4)), :int(rng.integers(1, 4))], ".png"
    elif kind == "line":
        image, ext = cv2.resize(base, (int(rng.integers(100, 4000)), 1)), ".png"
    elif kind == "column":
        image, ext = cv2.resize(base, (1, int(rng.integers(100, 4000)))), ".jpg"
    elif kind == "gray":
        image, ext = cv2.cvtColor(base, cv2.COLOR_BGR2GRAY), ".png"
    elif kind == "rgba":
        image, ext = cv2.cvtColor(base, cv2.COLOR_BGR2BGRA), ".png"
    elif kind == "deep":
        image, ext = base.astype(np.uint16) * 257, ".png"
    elif kind == "float_tif":
        image, ext = base.astype(np.float32) / 255 * float(rng.uniform(-2, 3)), ".tif"
    elif kind == "thin_tall":
        image, ext = cv2.resize(base, (3, 5000)), ".png"
    else:
        image, ext = np.zeros((int(rng.integers(8, 300)), int(rng.integers(8, 300)), 3), np.uint8), ".jpg"
    ok, encoded = cv2.imencode(ext, image)
    assert ok, kind
    return f"odd {kind} {image.shape} {image.dtype}", encoded.tobytes(), ext


def corrupt_capture(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """A byte-level corruption, or a well-formed .npz whose arrays are wrong in one way."""
    if rng.random() < 0.4:
        return corrupt_bytes(data, rng)
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    key = str(rng.choice(sorted(arrays)))
    a = arrays[key]
    kind = rng.choice(["drop", "dtype", "shape", "nan", "text", "scalar", "empty", "huge", "negative"])
    if kind == "drop":
        del arrays[key]
    elif kind == "dtype":
        dtype = rng.choice([np.float64, np.int64, np.bool_, np.uint8, str])
        try:
            arrays[key] = a.astype(dtype)
        except ValueError:                                   # text that is no number
            arrays[key] = np.zeros(a.shape, dtype)
    elif kind == "shape":
        arrays[key] = a.reshape(-1) if a.ndim > 1 else np.stack([a, a])
    elif kind == "nan":
        arrays[key] = np.full(a.shape, np.nan, np.float32)
    elif kind == "text":
        arrays[key] = np.array("nonsense")
    elif kind == "scalar":
        arrays[key] = np.array(7)
    elif kind == "empty":
        arrays[key] = np.zeros((0,) + a.shape[1:], a.dtype)
    elif kind == "huge":
        arrays[key] = np.full(a.shape, 1e30, np.float32) if a.dtype.kind == "f" else np.full(a.shape, 2**30, np.int64)
    else:
        arrays[key] = -np.abs(a.astype(np.float32)) - 1 if a.dtype.kind in "fiu" else a
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return f"{kind} {key}", buffer.getvalue()


def write_video(path: str, frames: int, size: tuple, fourcc: str) -> None:
    base = cv2.resize(cv2.imread(DEMO), size)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), 10, size)
    for i in range(frames):
        writer.write(np.roll(base, 3 * i, axis=1))
    writer.release()


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def engine_run(tmp_path_factory):
    """One engine (shipped fast network, a box covering any image, 3 fit steps, overlays on) and a
    function that runs one input through it and checks the rules."""
    from core.engine.pipeline import EngineOptions
    from core.engine.progress import Progress
    from core.engine.run import Estimator, VideoOptions
    out = tmp_path_factory.mktemp("fuzz_out")
    estimator = Estimator(EngineOptions(boxes=((-1e6, -1e6, 1e6, 1e6),), fit_steps=3), VideoOptions(), str(out),
                          overlay=True, progress=Progress("text"))

    def run(path: str, case: str, capsys) -> str:
        """Run one input; returns 'ok' or 'error'. Fails the test on any broken rule."""
        before = set(os.listdir(out))
        start = time.monotonic()
        with watchdog(CASE_SECONDS, case):
            outputs, failed = estimator.run([path])
        seconds = time.monotonic() - start
        err = capsys.readouterr().err
        assert "Traceback" not in err, (case, err)
        errors = [line.split("\r")[-1] for line in err.split("\n") if ": error: " in line]
        new = set(os.listdir(out)) - before
        assert not [n for n in new if is_temporary(n)], (case, new)            # never a partial file
        if failed:
            assert outputs == [] and failed == 1 and len(errors) == 1, (case, err)
            assert errors[0].startswith(f"handcap estimate: error: {path}: "), (case, errors)
            assert "cannot be processed" not in errors[0], (case, errors)      # an exception nobody named
            assert not new, (case, new)                                        # nothing left on failure
        else:
            assert len(outputs) == 1 and not errors, (case, err)
            capture = load_capture(outputs[0])                                 # complete and valid
            assert capture.image_size.min() >= 1
            for name in new:
                if name.endswith(".png"):
                    assert cv2.imread(os.path.join(out, name)) is not None, (case, name)
        for name in new:
            os.unlink(os.path.join(out, name))
        return ("error" if failed else "ok"), seconds

    yield run, estimator, out
    estimator.close()


def summary(kind: str, results: list) -> None:
    outcomes = [r for r, _ in results]
    times = [t for _, t in results]
    print(f"{kind}: {len(results)} cases, {outcomes.count('ok')} estimated, {outcomes.count('error')} one-line errors, "
          f"slowest {max(times):.2f} s, total {sum(times):.1f} s")


# -------------------------------------------------------------------------------- tests

def test_fuzz_photos(engine_run, tmp_path, capsys):
    run, estimator, out = engine_run
    rng = np.random.default_rng(SEED)
    data = open(DEMO, "rb").read()
    results = []
    for i in range(PHOTO_CASES):
        roll = rng.random()
        if roll < 0.6:
            what, blob = corrupt_bytes(data, rng)
            ext = ".jpg" if rng.random() < 0.8 else str(rng.choice(EXTENSIONS))
        elif roll < 0.85:
            what, blob, ext = odd_photo(rng)
        else:
            what, blob, ext = "wrong extension", data, str(rng.choice([".png", ".mp4", ".avi", ".tif", ".webp"]))
        path = str(tmp_path / f"photo_{i}{ext}")
        with open(path, "wb") as f:
            f.write(blob)
        results.append(run(path, f"photo {i}: {what} as {ext}", capsys))
    with capsys.disabled():
        summary("photos", results)
    assert {"ok", "error"} <= {r for r, _ in results}           # the corruptions reach both outcomes


def test_fuzz_videos(engine_run, tmp_path, capsys):
    run, estimator, out = engine_run
    rng = np.random.default_rng(SEED + 1)
    sources = {}
    for fourcc, ext in (("MJPG", ".avi"), ("mp4v", ".mp4")):
        path = str(tmp_path / f"source{ext}")
        write_video(path, 6, (96, 80), fourcc)
        sources[ext] = open(path, "rb").read()
    results = []
    for i in range(VIDEO_CASES):
        source_ext = str(rng.choice(sorted(sources)))
        roll = rng.random()
        if roll < 0.75:
            what, blob = corrupt_bytes(sources[source_ext], rng)
            ext = source_ext
        elif roll < 0.9:
            what, blob, ext = "wrong extension", sources[source_ext], str(rng.choice([".jpg", ".png", ".mov", ".mkv"]))
        else:
            size = (int(rng.integers(1, 6)) * 2, int(rng.integers(1, 6)) * 2)
            odd = str(tmp_path / f"odd{source_ext}")
            write_video(odd, int(rng.integers(1, 4)), size, "MJPG" if source_ext == ".avi" else "mp4v")
            what, blob, ext = f"odd frames {size}", open(odd, "rb").read() if os.path.exists(odd) else b"", source_ext
        path = str(tmp_path / f"video_{i}{ext}")
        with open(path, "wb") as f:
            f.write(blob)
        results.append(run(path, f"video {i}: {what} of {source_ext} as {ext}", capsys))
    with capsys.disabled():
        summary("videos", results)
    assert {"ok", "error"} <= {r for r, _ in results}


def test_fuzz_capture_files(engine_run, tmp_path, capsys):
    """Every corrupted capture either loads (and is then valid) or raises CaptureError naming the file."""
    run, estimator, out = engine_run
    assert run(DEMO, "the real photo", capsys)[0] == "ok"
    estimator.overlay = False
    outputs, _ = estimator.run([DEMO])
    estimator.overlay = True
    data = open(outputs[0], "rb").read()
    os.unlink(outputs[0])
    capsys.readouterr()
    assert zipfile.is_zipfile(io.BytesIO(data))
    rng = np.random.default_rng(SEED + 2)
    loaded, failed, slowest = [], 0, 0.0
    for i in range(CAPTURE_CASES):
        what, blob = corrupt_capture(data, rng)
        path = str(tmp_path / f"capture_{i}.npz")
        with open(path, "wb") as f:
            f.write(blob)
        start = time.monotonic()
        with watchdog(CASE_SECONDS, f"capture {i}: {what}"):
            try:
                capture = load_capture(path)
                loaded.append((path, what))
                assert capture.image_size.min() >= 1
            except CaptureError as e:
                failed += 1
                assert str(e).startswith(f"{path}: ") and "\n" not in str(e), (what, str(e))
        slowest = max(slowest, time.monotonic() - start)
    blended = _blend_some(loaded[:BLEND_CASES * SCALE], tmp_path / "scenes", capsys)
    with capsys.disabled():
        print(f"capture files: {CAPTURE_CASES} cases, {len(loaded)} loaded (still valid; {blended} of them "
              f"blended), {failed} CaptureError, slowest load {slowest:.3f} s")
    assert failed > CAPTURE_CASES // 2


BLEND_CASES = 6          # corrupted captures that still load, taken on into a Blender scene


def _blend_some(cases: list, folder, capsys) -> int:
    """`handcap blend`'s conversion of captures that loaded: a scene (exit 0/3) or one error line,
    never a traceback or a partial file."""
    try:
        from blender_addon.convert import convert_many
    except ImportError:
        return 0
    os.makedirs(folder, exist_ok=True)
    for i, (path, what) in enumerate(cases):
        out = str(folder / f"scene_{i}.glb")
        with watchdog(CASE_SECONDS, f"blend {what}"):
            code = convert_many([path], out)
        err = capsys.readouterr().err
        assert code in (0, 1, 3) and "Traceback" not in err, (what, code, err)
        assert os.path.isfile(out) == (code != 1), (what, code)
        assert code != 1 or len(err.strip().split("\n")) == 1, (what, err)
        assert not [n for n in os.listdir(folder) if is_temporary(n)], what
    return len(cases)
