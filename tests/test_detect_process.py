"""core.engine.detect_process: a video's frames decoded and detected in a child process give the same
frames and hands as in this process, a video with no decodable frame gives none, and leaving a video
early stops the child (the next video starts a new one)."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import torch

from core.engine.detect_process import DetectionProcess
from core.engine.inputs import VideoOptions
from core.engine.pipeline import Engine, EngineOptions
from core.engine.run import detected_frames
from core.engine.timing import StageTimes

from .conftest import REPO

FRAMES = 8


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> str:
    """The bundled demo hand (240 px) sliding over a grey 640x480 frame, FRAMES frames."""
    hand = cv2.resize(cv2.imread(os.path.join(REPO, "core", "assets", "demo_hand.jpg")), (240, 240))
    path = str(tmp_path_factory.mktemp("clip") / "slide.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 24, (640, 480))
    for i in range(FRAMES):
        frame = np.full((480, 640, 3), 100, np.uint8)
        frame[100 + 3 * i:340 + 3 * i, 60 + 12 * i:300 + 12 * i] = hand
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="module")
def process():
    process = DetectionProcess(EngineOptions(device="cpu"))
    yield process
    process.close()


def here(path: str, options: VideoOptions) -> list:
    """The same work in this process, one torch thread as in the child."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    engine = Engine(EngineOptions(device="cpu"))
    video, detector = cv2.VideoCapture(path), engine.video_detector()
    try:
        return list(detected_frames(engine, path, video, int(video.get(cv2.CAP_PROP_FRAME_COUNT)), options, detector))
    finally:
        video.release()
        detector.close()
        engine.close()
        torch.set_num_threads(threads)


def test_same_frames_and_hands_as_in_this_process(clip, process):
    options = VideoOptions(frame_start=1)
    times = StageTimes()
    child = list(process.frames(clip, options, times))
    local = here(clip, options)
    assert [i for i, _, _ in child] == [i for i, _, _ in local] == list(range(1, FRAMES))
    for (_, rgb_child, found_child), (_, rgb_local, found_local) in zip(child, local):
        assert np.array_equal(rgb_child, rgb_local)
        assert len(found_child) == len(found_local) == 1
        assert found_child[0].side == found_local[0].side
        np.testing.assert_allclose(found_child[0].keypoints_2d, found_local[0].keypoints_2d, atol=1e-3)
    assert times.seconds["detect"] > 0 and times.seconds["decode"] > 0     # the child's stage times came back


def test_broken_video_and_leaving_early_restarts_the_child(clip, process, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    assert list(process.frames(str(broken), VideoOptions(), StageTimes())) == []     # nothing decoded: no frames
    first = process.process
    for _ in process.frames(clip, VideoOptions(), StageTimes()):
        break                                                   # left after one frame
    assert first.poll() is not None and process.process is None
    assert len(list(process.frames(clip, VideoOptions(frame_end=2), StageTimes()))) == 3
