"""Progress, warnings and errors of a command, for people or for the add-on (no torch).

Text mode: a progress line per step on stderr, ``<command>: error: <input>: <problem>`` and
``<command>: warning: ...`` lines on stderr. JSON mode (``--progress json``, what the add-on
reads): one JSON object per stdout line, ``{"stage", "done", "total", "message"}``; errors and
warnings are ``{"stage": "error"|"warning", ...}`` (and also printed as text on stderr); the last
line is ``{"stage": "done", "outputs": [...], "failed": n, "no_hand": [...]}``.
"""

from __future__ import annotations

import json
import sys
import time


class Progress:
    """Progress for people (a line per step on stderr) or for the add-on (JSON lines on stdout)."""

    def __init__(self, mode: str = "text", command: str = "handcap estimate"):
        self.json = mode == "json"
        self.command = command
        self._last = 0.0
        self._open = False          # a text progress line is waiting for its end of line

    def update(self, stage: str, done: int, total: int, message: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.25 and done < total:
            return
        self._last = now
        if self.json:
            print(json.dumps({"stage": stage, "done": done, "total": total, "message": message}), flush=True)
        else:
            print(f"\r{stage}: {done}/{total} {message}"[:200].ljust(60), end="" if done < total else "\n",
                  file=sys.stderr, flush=True)
            self._open = done < total

    def _end_line(self) -> None:
        """End an open progress line, so that the next message starts a line of its own."""
        if self._open:
            print(file=sys.stderr, flush=True)
            self._open = False

    def _say(self, kind: str, message: str) -> None:
        message = " ".join(str(message).split())          # one line, whatever the message held
        if self.json:
            print(json.dumps({"stage": kind, "done": 0, "total": 0, "message": message}), flush=True)
        self._end_line()
        print(f"{self.command}: {kind}: {message}", file=sys.stderr, flush=True)

    def error(self, message: str) -> None:
        self._say("error", message)

    def warning(self, message: str) -> None:
        self._say("warning", message)

    def finish(self, outputs: list[str], failed: int, message: str, no_hand: list[str] = ()) -> None:
        if self.json:
            print(json.dumps({"stage": "done", "outputs": outputs, "failed": failed, "no_hand": list(no_hand),
                              "message": message}), flush=True)
        else:
            self._end_line()
            print(message, file=sys.stderr, flush=True)
