"""No third-party noise on the terminal: handcap's own lines only, unless ``--verbose``.

Libraries print to the process's file descriptors 1 and 2 from native code (Blender's "Saved
copy as <temporary name>", TensorFlow Lite and absl log lines, FFmpeg's decoder complaints) and
through Python's ``warnings``. Inside ``quiet_third_party()`` the descriptors point to the null
device while ``sys.stdout`` / ``sys.stderr`` keep writing where they wrote before (through copies
of the original descriptors), so handcap's progress, results and errors still appear, and
warnings from libraries are dropped (writers that print through Python, like Blender's exporters,
ask ``is_quiet()``). Standard library only (the add-on's batch script uses it too).
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
import sys
import warnings
from typing import Iterator


_ACTIVE = []                     # a True per quiet_third_party block the process is in


def is_quiet() -> bool:
    """Whether third-party output is being silenced right now (so writers may drop their chatter)."""
    return bool(_ACTIVE)


def _flush_c_streams() -> None:
    """Flush C's stdio buffers (native code printf()s into them; through a pipe they would reach
    the descriptor only at exit, after it is restored)."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):      # no C library reachable this way (Windows)
        pass


def _fd_of(stream) -> int:
    """The file descriptor behind a Python stream, or -1 (pytest's captures have none)."""
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return -1


@contextlib.contextmanager
def quiet_third_party(verbose: bool = False) -> Iterator[None]:
    """Silence native output on fds 1 and 2 and Python warnings inside the block (not when verbose)."""
    if verbose:
        yield
        return
    swapped, saved = [], []
    _flush_c_streams()
    for fd, name in ((1, "stdout"), (2, "stderr")):
        stream = getattr(sys, name)
        with contextlib.suppress(Exception):
            stream.flush()
        try:
            copy = os.dup(fd)
        except OSError:                      # no such descriptor (a detached process): nothing to silence
            continue
        saved.append((fd, copy))
        if _fd_of(stream) == fd:             # our own lines keep going where they went
            replacement = open(os.dup(copy), "w", buffering=1, encoding=getattr(stream, "encoding", None) or "utf-8",
                               errors=getattr(stream, "errors", None) or "replace")
            setattr(sys, name, replacement)
            swapped.append((name, stream, replacement))
    null = os.open(os.devnull, os.O_WRONLY)
    for fd, _ in saved:
        os.dup2(null, fd)
    os.close(null)
    logging_before = logging.root.manager.disable
    logging.disable(logging.WARNING)
    _ACTIVE.append(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        _ACTIVE.pop()
        _flush_c_streams()
        logging.disable(logging_before)
        for name, original, replacement in swapped:
            with contextlib.suppress(Exception):
                replacement.flush()
            setattr(sys, name, original)
            replacement.close()
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
