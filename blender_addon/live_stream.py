"""Live capture without bpy: start ``handcap live``, read its records without blocking, stop it.

    stream = start_live(python, "0", rig_path)        # camera 0, or a video file's path
    for record in stream.poll(): ...                   # never blocks; dicts, see core/engine/live.py
    stream.stop()                                      # closes stdin: the engine ends cleanly

A reader thread moves stdout lines into a queue, another keeps the last stderr lines for the error
message. ``stop`` closes the engine's stdin (it writes its ``end`` record and exits), then
terminates it after ``grace`` seconds, then kills it: no process is left behind either way.
"""

from __future__ import annotations

import collections
import os
import queue
import subprocess
import threading
import time

from .engine import EngineError, _parse, _pump


def live_command(python: str, source: str, rig_path: str = "", extra: list = ()) -> list:
    """The engine command line: ``<python> -m core live SOURCE [--rig RIG] [extra...]``."""
    command = [python, "-m", "core", "live", str(source)]
    return command + (["--rig", rig_path] if rig_path else []) + list(extra)


def start_live(python: str, source: str, rig_path: str = "", extra: list = (), env: dict = None) -> "LiveStream":
    """Start the engine on a camera index or a video file; EngineError if it cannot be launched."""
    return LiveStream(live_command(python, source, rig_path, extra), env=env).start()


class LiveStream:
    """One ``handcap live`` process. After ``poll``: ``header`` (the start record), ``latency_ms`` and
    ``fps`` (of the last frame record), ``frames`` (frame records read), ``finished``, ``error``."""

    STDERR_LINES = 20

    def __init__(self, command: list, env: dict = None):
        self.command = list(command)
        self.env = env
        self.header = None
        self.end = None
        self.latency_ms = 0.0
        self.fps = 0.0
        self.frames = 0
        self.returncode = None
        self.error = None
        self._process = None
        self._lines = queue.Queue()
        self._stderr = collections.deque(maxlen=self.STDERR_LINES)
        self._threads = []
        self._stopping = False

    @property
    def pid(self) -> int:
        return self._process.pid if self._process is not None else -1

    @property
    def finished(self) -> bool:
        return self.returncode is not None

    def start(self) -> "LiveStream":
        env = dict(os.environ if self.env is None else self.env, PYTHONUNBUFFERED="1")
        try:
            self._process = subprocess.Popen(self.command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, text=True, bufsize=1, encoding="utf-8",
                                             errors="replace")
        except OSError as e:
            raise EngineError(f"cannot start the engine ({self.command[0]}): {e.strerror or e}") from None
        for stream, sink in ((self._process.stdout, self._lines.put), (self._process.stderr, self._stderr.append)):
            thread = threading.Thread(target=_pump, args=(stream, sink), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def poll(self) -> list:
        """The records that arrived since the last call (never blocks); notes when the engine ended."""
        records = []
        while True:
            try:
                record = _parse(self._lines.get_nowait())
            except queue.Empty:
                break
            if record is None:
                continue
            kind = record.get("type")
            if kind == "start":
                self.header = record
            elif kind == "frame":
                self.frames += 1
                self.latency_ms = float(record.get("latency_ms") or 0.0)
                self.fps = float(record.get("fps") or 0.0)
            elif kind == "end":
                self.end = record
            records.append(record)
        if self.returncode is None and self._process is not None and self._process.poll() is not None \
                and all(not t.is_alive() for t in self._threads) and self._lines.empty():
            self._finish(self._process.returncode)
        return records

    def wait(self, timeout: float = None) -> list:
        """Every record until the engine ends (the whole input, for a video file); the engine is
        stopped if ``timeout`` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        records = []
        while not self.finished:
            records += self.poll()
            if deadline is not None and time.monotonic() > deadline:
                self.stop(grace=0.0)
                break
            time.sleep(0.01)
        return records + self.poll()

    def stop(self, grace: float = 5.0) -> None:
        """End the engine: close its stdin (it ends cleanly), terminate it after ``grace`` seconds,
        kill it 3 s after that; then reap it (no process is left)."""
        self._stopping = True
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            try:
                process.stdin.close()
            except OSError:
                pass
            for signal_it, wait in ((lambda: None, grace), (process.terminate, 3.0), (process.kill, None)):
                signal_it()
                try:
                    process.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        else:
            try:
                process.stdin.close()
            except OSError:
                pass
        for thread in self._threads:
            thread.join(2.0)
        if self.returncode is None:
            self._finish(process.returncode)

    def _finish(self, returncode: int) -> None:
        self.returncode = returncode
        if returncode != 0 and not self._stopping:
            lines = [line for line in self._stderr if line.strip()]
            text = " | ".join(lines[-3:]) or "no error output"
            if any("No module named" in line and "core" in line for line in lines):
                text = f"the handcap engine is not installed for {self.command[0]} ({text})"
            self.error = f"the live engine ended (exit code {returncode}): {text}"
