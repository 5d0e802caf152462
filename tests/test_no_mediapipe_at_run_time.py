"""The engine runs without mediapipe: estimating a photo and a video in one fresh Python process imports
no mediapipe (nor jax, TensorFlow or a TFLite runtime). mediapipe is only a test and maintainer tool."""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = r"""
import json, os, sys
import cv2, numpy as np
from core.engine.pipeline import EngineOptions
from core.engine.run import Estimator, Progress, VideoOptions

out = sys.argv[1]
photo = os.path.join("core", "assets", "demo_hand.jpg")
hand = cv2.resize(cv2.imread(photo), (220, 220))
video = os.path.join(out, "clip.mp4")
writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (480, 360))
for i in range(6):
    frame = np.full((360, 480, 3), 120, np.uint8)
    frame[60:280, 40 + 20 * i:260 + 20 * i] = hand
    writer.write(frame)
writer.release()
estimator = Estimator(EngineOptions(device="cpu", fit_steps=5), VideoOptions(), os.path.join(out, "captures"),
                      progress=Progress("json"))
try:
    outputs, failed = estimator.run([photo, video])
finally:
    estimator.close()
banned = ("mediapipe", "jax", "jaxlib", "tensorflow", "tflite", "ai_edge_litert", "tflite_runtime")
print("RESULT " + json.dumps({"outputs": len(outputs), "failed": failed,
                              "imported": sorted(m for m in sys.modules if m.split(".")[0] in banned)}))
"""


def test_estimating_a_photo_and_a_video_imports_no_mediapipe(tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO}
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=600)
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert run.returncode == 0 and lines, run.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["failed"] == 0 and result["outputs"] == 2, run.stderr[-3000:]
    assert result["imported"] == []
