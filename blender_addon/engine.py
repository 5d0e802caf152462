"""Running the handcap engine as a separate process and following its progress (no bpy).

Blender's Python has no torch, so Estimate Hand runs
``<engine python> -m core estimate INPUT -o OUTDIR --progress json ...`` and reads one JSON
object per stdout line: ``{"stage", "done", "total", "message"}``, the last one
``{"stage": "done", "output": PATH}`` (or ``"outputs": [PATH, ...]``); a line with
``"stage": "error"`` carries a message for the user. Reader threads move lines into queues so
the caller (a modal operator's timer, or a plain loop) never blocks: ``EngineRun.poll()``.

The exit code says how it ended (``exit_codes``): 3 is "read fine, no hand found" and not a
failure. An engine that crashes, is killed, or says nothing for ``stall_timeout`` seconds (it is
then stopped) ends the run with a message saying why; a run that did not succeed (cancelled
included) removes the files it had started in its output folder.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time

from . import exit_codes
from .regions import box_arguments

ENV_PYTHON = "HANDCAP_PYTHON"
STALL_TIMEOUT = 600.0       # seconds without a line from the engine before it counts as hung
NOT_FOUND = ("engine not found: set the engine's Python in the add-on preferences "
             f"(or the {ENV_PYTHON} environment variable)")


class EngineError(RuntimeError):
    """The engine cannot be started, or it failed; the message is meant for the user."""


@dataclasses.dataclass
class EstimateOptions:
    """What the Estimate Hand panel passes on to ``core estimate``."""

    hand: str = "auto"            # auto | left | right
    max_hands: int = 0            # 0: the engine's default (every hand of a photo, 2 per video frame)
    smoothing: float = 0.5        # 0 = none, 1 = strongest
    frame_start: int = 0          # source frames, 0-based
    frame_end: int = -1           # inclusive; -1 = to the end
    frame_step: int = 1
    device: str = "auto"          # auto | cpu | cuda
    boxes: tuple = ()             # hand regions (x0, y0, x1, y1) in pixels, used instead of detection
    ray: str = None               # None: in the engine's process; "": on Ray (the cluster found, or a local
                                  # one); else a Ray address (the batch script's --ray; this module imports no ray)

    def arguments(self) -> list:
        """Engine command-line options for the settings that differ from the defaults
        (so the defaults are the engine's own and a plain estimate needs no options),
        then one ``--box x0,y0,x1,y1`` per hand region, then ``--ray[=ADDRESS]``."""
        default = EstimateOptions()
        args = []
        for field in dataclasses.fields(self):
            if field.name in ("boxes", "ray"):
                continue
            value = getattr(self, field.name)
            if value != getattr(default, field.name):
                text = f"{value:g}" if isinstance(value, float) else str(value)
                args += ["--" + field.name.replace("_", "-"), text]
        ray = [] if self.ray is None else ["--ray" + (f"={self.ray}" if self.ray else "")]
        return args + box_arguments(self.boxes) + ray


def find_engine_python(preference: str = "") -> str:
    """The engine's Python: the preference, else $HANDCAP_PYTHON, else the interpreter of the
    ``handcap`` command on PATH. Raises EngineError with a readable message if none is found.
    """
    for origin, path in (("the add-on preferences", preference),
                         (ENV_PYTHON, os.environ.get(ENV_PYTHON, ""))):
        if path:
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path
            raise EngineError(f"engine Python {path!r} (from {origin}) is not an executable file")
    script = shutil.which("handcap")
    if script:
        python = _script_interpreter(script)
        if python:
            return python
    raise EngineError(NOT_FOUND)


def _script_interpreter(script: str) -> str:
    """The Python a console script runs with: its ``#!`` line, else a python next to it."""
    try:
        with open(script, "rb") as f:
            first = f.readline(4096).decode("utf-8", "replace").strip()
    except OSError:
        first = ""
    words = first[2:].split() if first.startswith("#!") else []
    if len(words) >= 2 and os.path.basename(words[0]) == "env":      # #!/usr/bin/env python3
        words = [shutil.which(words[1]) or ""]
    if words and os.path.isfile(words[0]) and "python" in os.path.basename(words[0]):
        return words[0]
    folder = os.path.dirname(os.path.realpath(script))
    for name in ("python", "python3", "python.exe"):
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate):
            return candidate
    return ""


def estimate_command(python: str, input_path: str, out_dir: str, options: EstimateOptions) -> list:
    """The full engine command line for one photo or video."""
    return [python, "-m", "core", "estimate", os.path.abspath(input_path), "-o", os.path.abspath(out_dir),
            "--progress", "json", *options.arguments()]


def estimate_views_command(python: str, view_paths: list, cameras_path: str, out_dir: str,
                           options: EstimateOptions) -> list:
    """The engine command line for several views of one scene (photos taken at one instant, or videos
    filmed together) with their cameras file: ``core estimate --views V1 V2 ... --cameras C.json``.
    Hand regions belong to one image, so ``options.boxes`` is not passed."""
    return [python, "-m", "core", "estimate", "--views", *(os.path.abspath(p) for p in view_paths),
            "--cameras", os.path.abspath(cameras_path), "-o", os.path.abspath(out_dir), "--progress", "json",
            *dataclasses.replace(options, boxes=()).arguments()]


@dataclasses.dataclass
class Progress:
    """The latest progress line: stage name, done/total units, a message."""

    stage: str = "starting"
    done: float = 0.0
    total: float = 0.0
    message: str = ""

    @property
    def fraction(self) -> float:
        """0..1 (0 while the total is unknown)."""
        return min(max(self.done / self.total, 0.0), 1.0) if self.total > 0 else 0.0

    def text(self) -> str:
        count = f" {int(self.done)}/{int(self.total)}" if self.total > 0 else ""
        return f"{self.stage}{count}" + (f": {self.message}" if self.message else "")


class EngineRun:
    """One engine process: start it, ``poll()`` it without blocking, cancel it, read the result.

    After it ends: ``outputs`` (capture files written), ``error`` (None on success, else a
    message for the user), ``cancelled``, ``no_hand`` (exit code 3: read fine, no hand found).
    ``out_dir``: the engine's output folder; files that appear there during a run that does not
    succeed are removed. ``stall_timeout``: seconds without any output line (stdout or stderr)
    after which the engine is stopped as hung.
    """

    STDERR_LINES = 20

    def __init__(self, command: list, cwd: str = None, env: dict = None, out_dir: str = None,
                 stall_timeout: float = STALL_TIMEOUT):
        self.command = list(command)
        self.cwd = cwd
        self.env = env
        self.out_dir = out_dir
        self.stall_timeout = stall_timeout
        self.progress = Progress()
        self.outputs = []
        self.error = None
        self.cancelled = False
        self.returncode = None
        self._process = None
        self._lines = queue.Queue()
        self._stderr = collections.deque(maxlen=self.STDERR_LINES)
        self._threads = []
        self._engine_error = None
        self._stalled = None
        self._before = set()
        self._last_sign = time.monotonic()

    def start(self) -> "EngineRun":
        """Launch the process (EngineError if it cannot be launched at all)."""
        env = dict(os.environ if self.env is None else self.env, PYTHONUNBUFFERED="1")
        if self.out_dir and os.path.isdir(self.out_dir):
            self._before = set(os.listdir(self.out_dir))
        try:
            self._process = subprocess.Popen(
                self.command, cwd=self.cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
                encoding="utf-8", errors="replace")
        except OSError as e:
            raise EngineError(f"cannot start the engine ({self.command[0]}): {e.strerror or e}") from None
        self._last_sign = time.monotonic()
        for stream, sink in ((self._process.stdout, self._lines.put),
                             (self._process.stderr, self._stderr_line)):
            thread = threading.Thread(target=_pump, args=(stream, sink), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    @property
    def finished(self) -> bool:
        """True once the process has exited and its output has been read to the end."""
        return self.returncode is not None

    @property
    def no_hand(self) -> bool:
        """The engine read its input fine and found no hand in it (exit code 3)."""
        return self.returncode == exit_codes.NO_HAND

    def _stderr_line(self, line: str) -> None:
        self._last_sign = time.monotonic()
        self._stderr.append(line)

    def poll(self, on_event=None) -> list:
        """Handle the progress lines that arrived since the last call; never blocks.

        Calls ``on_event(event, run)`` after each one and returns the new events (dicts).
        Sets ``finished`` once the process is over and its output is read; stops an engine that
        has said nothing for ``stall_timeout`` seconds.
        """
        events = []
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            self._last_sign = time.monotonic()
            event = _parse(line)
            if event is not None:
                self._handle(event)
                events.append(event)
                if on_event is not None:
                    on_event(event, self)
        if self.returncode is None and self._process is not None and self._process.poll() is not None:
            if all(not t.is_alive() for t in self._threads) and self._lines.empty():
                self._finish(self._process.returncode)
        if (self.returncode is None and self.stall_timeout and
                time.monotonic() - self._last_sign > self.stall_timeout):
            self._stalled = (f"the engine said nothing for {self.stall_timeout:g} s (last: {self.progress.text()}) "
                             "and was stopped")
            self._stop()
        return events

    def wait(self, timeout: float = None, on_event=None) -> "EngineRun":
        """Block until the process ends (calling ``on_event(event, run)`` per progress line)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.finished:
            self.poll(on_event)
            if self.finished:
                break
            if deadline is not None and time.monotonic() > deadline:
                self._stalled = f"the engine took longer than {timeout:g} s and was stopped"
                self._stop()
                break
            time.sleep(0.02)
        return self

    def cancel(self) -> None:
        """Stop the process (terminate, then kill after 3 s), mark the run cancelled and remove
        the files it had started."""
        self.cancelled = True
        self._stop()

    def _stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()           # the engine exits through its cleanup (SIGTERM)
            try:
                self._process.wait(3.0)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        for thread in self._threads:
            thread.join(1.0)
        if self.returncode is None:
            self._finish(self._process.returncode if self._process is not None else -1)

    def _handle(self, event: dict) -> None:
        p = self.progress
        p.stage = str(event.get("stage", p.stage))
        p.done = _number(event.get("done"), p.done)
        p.total = _number(event.get("total"), p.total)
        p.message = str(event.get("message", ""))
        if p.stage == "error":
            self._engine_error = p.message or "the engine reported an error"
        outputs = event.get("outputs") or ([event["output"]] if event.get("output") else [])
        self.outputs.extend(str(o) for o in outputs)

    def _finish(self, returncode: int) -> None:
        self.returncode = returncode
        if self.cancelled:
            self.error = "cancelled"
        elif self._stalled:
            self.error = self._stalled
        elif self._engine_error:
            self.error = self._engine_error
        elif returncode not in (exit_codes.OK, exit_codes.NO_HAND):
            self.error = self._stderr_message(returncode)
        elif not self.outputs:
            self.error = "the engine finished without writing a capture file"
        if self.error:
            self._remove_partial_files()

    def _remove_partial_files(self) -> None:
        """Files that appeared in ``out_dir`` during this run (finished or not) are removed: a run
        that did not succeed leaves the folder as it found it."""
        if not self.out_dir or not os.path.isdir(self.out_dir):
            return
        for name in set(os.listdir(self.out_dir)) - self._before:
            path = os.path.join(self.out_dir, name)
            try:
                if os.path.isfile(path) or os.path.islink(path):
                    os.unlink(path)
            except OSError:
                pass
        self.outputs = [p for p in self.outputs if os.path.exists(p)]

    def _stderr_message(self, returncode: int) -> str:
        lines = [line for line in self._stderr if line.strip()]
        text = "\n".join(lines)
        if "No module named core" in text or "No module named 'core'" in text:
            return f"the handcap engine is not installed for {self.command[0]}: {NOT_FOUND}"
        tail = " | ".join(lines[-3:]) if lines else "no error output"
        if returncode < 0:
            try:
                name = signal.Signals(-returncode).name
            except ValueError:
                name = f"signal {-returncode}"
            hint = " (out of memory?)" if name == "SIGKILL" else ""
            return f"the engine was killed by {name}{hint}: {tail}"
        return f"the engine failed (exit code {returncode}): {tail}"


def run_estimate(python: str, input_path: str, out_dir: str, options: EstimateOptions = None,
                 on_event=None, timeout: float = None, stall_timeout: float = STALL_TIMEOUT) -> list:
    """Run the engine to completion on one input; the capture files it wrote, or EngineError.
    A capture file without hands (exit code 3) is returned like any other."""
    return _run_to_end(estimate_command(python, input_path, out_dir, options or EstimateOptions()), out_dir,
                       on_event, timeout, stall_timeout)


def run_estimate_views(python: str, view_paths: list, cameras_path: str, out_dir: str,
                       options: EstimateOptions = None, on_event=None, timeout: float = None,
                       stall_timeout: float = STALL_TIMEOUT) -> list:
    """``run_estimate`` for several views and their cameras file (``estimate_views_command``): the engine
    writes one capture file, named after the first view, holding every view's camera."""
    command = estimate_views_command(python, view_paths, cameras_path, out_dir, options or EstimateOptions())
    return _run_to_end(command, out_dir, on_event, timeout, stall_timeout)


def _run_to_end(command: list, out_dir: str, on_event, timeout, stall_timeout) -> list:
    """Run one engine command in ``out_dir`` to its end; the capture files it wrote, or EngineError."""
    os.makedirs(out_dir, exist_ok=True)
    run = EngineRun(command, cwd=out_dir, out_dir=out_dir, stall_timeout=stall_timeout).start()
    run.wait(timeout, on_event)
    if run.error:
        raise EngineError(run.error)
    return run.outputs


def run_estimate_together(python: str, input_paths: list, out_dir: str, options: EstimateOptions,
                          on_event=None, stall_timeout: float = STALL_TIMEOUT) -> tuple:
    """Run the engine once over many photos and videos (with ``options.ray``: spread over a Ray
    cluster, and resuming: inputs whose capture file in ``out_dir`` is complete are skipped).
    Returns (capture files, {input path: its error line}); a bad input is its error, not the run's.
    EngineError when the run as a whole failed (cannot start, usage error, crash, stalled)."""
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.abspath(p) for p in input_paths]
    command = [python, "-m", "core", "estimate", *paths, "-o", os.path.abspath(out_dir), "--progress", "json",
               *options.arguments()]
    errors = {}

    def follow(event, run):
        message = str(event.get("message", ""))
        if event.get("stage") == "error":
            for path in paths:
                if message.startswith(path + ": "):
                    errors[path] = message[len(path) + 2:]
        if on_event is not None:
            on_event(event, run)

    run = EngineRun(command, cwd=out_dir, stall_timeout=stall_timeout).start()   # keeps what it wrote
    run.wait(None, follow)
    if run.returncode not in (exit_codes.OK, exit_codes.FAILED, exit_codes.NO_HAND) or run._stalled \
            or (run.returncode == exit_codes.FAILED and not errors and not run.outputs):
        raise EngineError(run.error or run._stderr_message(run.returncode))
    return run.outputs, errors


def _pump(stream, sink) -> None:
    """Reader thread: every line of ``stream`` (without its newline) goes to ``sink``."""
    try:
        for line in stream:
            sink(line.rstrip("\r\n"))
    except (OSError, ValueError):
        pass
    finally:
        stream.close()


def _parse(line: str):
    """A progress event from one stdout line, or None for anything that is not a JSON object."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _number(value, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default
