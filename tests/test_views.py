"""training.views: bad input gets one clear error line (exit 2) and writes nothing."""

from __future__ import annotations

import subprocess
import sys


def test_a_bad_photo_is_a_usage_error_and_writes_nothing(tmp_path):
    photo = tmp_path / "broken.jpg"
    photo.write_bytes(b"not a jpeg")
    out = tmp_path / "views.png"
    result = subprocess.run([sys.executable, "-m", "training.views", "--images", str(photo), "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "broken.jpg: not a readable image" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == [photo]


def test_a_bad_data_spec_is_a_usage_error():
    result = subprocess.run([sys.executable, "-m", "training.views", "--data", "nope:1", "--out", "x.png"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "bad --data 'nope:1'" in result.stderr
