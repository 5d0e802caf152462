"""Install Engine / Check Engine without bpy: a private virtual environment for the engine.

    job = InstallJob(target, wheels=[...], find_links=[...], offline=False, log_path=...)
    job.start(); ... job.poll() ...; job.cancel()          # or job.run() to the end

The engine (torch, OpenCV) cannot live in Blender's own Python, so it gets a virtual environment
of its own, ``target`` (the extension's user folder; ``preferences`` chooses it). The venv is built
in a temporary folder beside ``target`` and renamed into place only when pip succeeded, so a
second click, a cancel or a failure leaves the previous engine (or nothing) as it was, never half
an install. Everything pip says goes to ``log_path``; its "Collecting"/"Downloading"/"Installing"
lines are the progress.

The base Python: Blender's own interpreter when its version suits the engine's wheels (3.11 to
3.13: torch 2.13 has wheels for these), else the first ``python3.13/3.12/3.11`` on PATH; a
Blender whose Python is newer (say 3.14) and no suitable Python on PATH is told so, with what
to install. Offline (Blender's "Allow Online Access" off) pip gets ``--no-index`` and installs
only from the local wheels or folders given.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

from .engine import EngineError

SUPPORTED = ((3, 11), (3, 13))                 # inclusive range of Pythons the engine's wheels exist for
PROGRESS_WORDS = ("Processing", "Collecting", "Downloading", "Installing", "Successfully")
# pip's "Collecting" lines are counted against this many (handcap and its pinned dependencies and theirs)
EXPECTED_PACKAGES = 40


def venv_python(folder: str) -> str:
    """The interpreter inside a virtual environment (POSIX or Windows layout)."""
    for relative in (("bin", "python"), ("Scripts", "python.exe")):
        path = os.path.join(folder, *relative)
        if os.path.isfile(path):
            return path
    return os.path.join(folder, "Scripts" if os.name == "nt" else "bin", "python.exe" if os.name == "nt" else "python")


def python_version(python: str) -> tuple:
    """(major, minor) of an interpreter, or () when it cannot be run."""
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                             text=True, timeout=30)
        return tuple(int(v) for v in out.stdout.split()) if out.returncode == 0 else ()
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return ()


def find_base_python(candidates: list = None) -> tuple:
    """(a Python that can make the engine's venv, why that one). The candidates (default: Blender's
    own interpreter, then python3.13/3.12/3.11/python3 on PATH) are tried in order; EngineError
    says what to install when none is within SUPPORTED."""
    if candidates is None:
        candidates = [sys.executable] + [shutil.which(n) for n in ("python3.13", "python3.12", "python3.11", "python3")]
    low, high = SUPPORTED
    seen = []
    for python in candidates:
        if not python or python in (p for p, _ in seen):
            continue
        found = python_version(python)
        seen.append((python, found))
        if found and low <= found <= high and _has_venv(python):
            return python, f"Python {found[0]}.{found[1]} ({python})"
    said = ", ".join(f"{p} is {'.'.join(map(str, v)) if v else 'not runnable'}" for p, v in seen) or "none found"
    raise EngineError(f"no Python {low[0]}.{low[1]} to {high[0]}.{high[1]} to build the engine with ({said}); the "
                      f"engine's wheels (torch) need one of these: install Python {high[0]}.{high[1]} "
                      "(python.org) and click Install Engine again")


def _has_venv(python: str) -> bool:
    return subprocess.run([python, "-c", "import venv, ensurepip"], capture_output=True, timeout=60).returncode == 0


def bundled_wheels(addon_dir: str) -> list:
    """The handcap wheel(s) the extension zip carries (``handcap addon-zip`` puts them in wheels/)."""
    return sorted(glob.glob(os.path.join(addon_dir, "wheels", "handcap-*.whl")))


def pip_arguments(wheels: list, find_links: list = (), offline: bool = False) -> list:
    """``pip install`` arguments for handcap from ``wheels`` (files) or a project folder, with
    ``find_links`` (folders of wheels) searched too; offline: only those (``--no-index``)."""
    args = ["install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off"]
    if offline:
        args.append("--no-index")
    for folder in find_links:
        args += ["--find-links", folder]
    return args + list(wheels)


class InstallJob:
    """One Install Engine: venv in a temporary folder, pip install, rename to ``target``.

    ``state``: "idle" | "running" | "done" | "failed" | "cancelled"; ``progress`` 0..1; ``message``
    (the last step, or why it failed); ``python`` (the engine's interpreter when done)."""

    def __init__(self, target: str, wheels: list, find_links: list = (), offline: bool = False,
                 log_path: str = "", base_python: str = "", check_code: str = "import core, torch, cv2"):
        if not wheels:
            raise EngineError("nothing to install: no handcap wheel in the extension and no local wheel or folder given")
        if offline and not find_links and not all(os.path.isfile(w) or os.path.isdir(w) for w in wheels):
            raise EngineError("Blender is offline (Preferences > System > Allow Online Access): install from a "
                              "local wheel or folder")
        self.target = os.path.abspath(target)
        self.wheels, self.find_links, self.offline = list(wheels), list(find_links), offline
        self.log_path = log_path or self.target + ".log"
        self.base_python = base_python
        self.check_code = check_code          # run in the new engine before it replaces the old one
        self.state, self.progress, self.message, self.python = "idle", 0.0, "", ""
        self._process = None
        self._cancel = threading.Event()
        self._thread = None

    def start(self) -> "InstallJob":
        self.state = "running"
        self._thread = threading.Thread(target=self.run, daemon=True, name="handcap-install")
        self._thread.start()
        return self

    def wait(self, timeout: float = None) -> "InstallJob":
        if self._thread is not None:
            self._thread.join(timeout)
        return self

    def cancel(self) -> None:
        self._cancel.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()

    def run(self) -> "InstallJob":
        """The whole install in this thread; never raises (the outcome is in ``state``/``message``)."""
        self.state = "running"
        parent = os.path.dirname(self.target)
        os.makedirs(parent, exist_ok=True)
        building = tempfile.mkdtemp(prefix=".engine-building-", dir=parent)
        try:
            with open(self.log_path, "w", encoding="utf-8") as log:
                base = self.base_python
                if not base:
                    base, why = find_base_python()
                    log.write(f"base Python: {why}\n")
                self._step(log, "creating the virtual environment", 0.02,
                           [base, "-m", "venv", "--clear", building])
                python = venv_python(building)
                self._step(log, "installing handcap and its dependencies", 0.1,
                           [python, "-m", "pip", *pip_arguments(self.wheels, self.find_links, self.offline)])
                self._step(log, "checking the engine", 0.95,
                           [python, "-c", self.check_code])
            self._replace(building)
            self.python = venv_python(self.target)
            self.state, self.progress, self.message = "done", 1.0, f"engine installed: {self.python}"
        except Exception as e:         # cancelled, pip failed, no Python: nothing half-made is left
            shutil.rmtree(building, ignore_errors=True)
            self.state = "cancelled" if self._cancel.is_set() else "failed"
            self.message = "cancelled" if self._cancel.is_set() else f"{e} (log: {self.log_path})"
        return self

    def _step(self, log, what: str, start: float, command: list) -> None:
        if self._cancel.is_set():
            raise EngineError("cancelled")
        self.message, self.progress = what, max(self.progress, start)
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                         encoding="utf-8", errors="replace", env=dict(os.environ, PYTHONNOUSERSITE="1"))
        packages, last = 0, ""
        for line in self._process.stdout:
            log.write(line)
            log.flush()
            words = line.strip()
            if words.startswith(PROGRESS_WORDS):
                packages += words.startswith(("Collecting", "Processing"))
                self.progress = max(self.progress, min(0.9, 0.1 + 0.8 * packages / EXPECTED_PACKAGES))
                self.message = f"{what}: {words[:120]}"
            if words:
                last = words
        code = self._process.wait()
        self._process = None
        if self._cancel.is_set():
            raise EngineError("cancelled")
        if code != 0:
            raise EngineError(f"{what} failed (exit code {code}): {last[:300]}")

    def _replace(self, building: str) -> None:
        """``building`` becomes ``target``; a previous engine is moved aside first and removed after."""
        old = None
        if os.path.exists(self.target):
            old = tempfile.mkdtemp(prefix=".engine-old-", dir=os.path.dirname(self.target))
            os.rmdir(old)
            os.rename(self.target, old)
        try:
            os.rename(building, self.target)
        except OSError:
            if old:
                os.rename(old, self.target)
            raise
        if old:
            shutil.rmtree(old, ignore_errors=True)


def check_engine(python: str, timeout: float = 300.0, estimate: bool = True, env: dict = None) -> dict:
    """Run ``<python> -m core self-test --json``; its report (dict), or EngineError saying why not."""
    command = [python, "-m", "core", "self-test", "--json"] + ([] if estimate else ["--no-estimate"])
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env,
                             cwd=tempfile.gettempdir())       # not a folder that happens to hold a core/
    except (OSError, subprocess.TimeoutExpired) as e:
        raise EngineError(f"the engine's self-test could not run ({python}): {e}") from None
    line = next((l for l in reversed(out.stdout.splitlines()) if l.startswith("{")), "")
    try:
        return json.loads(line)
    except ValueError:
        tail = " | ".join(l for l in out.stderr.splitlines()[-3:] if l.strip()) or "no output"
        if "No module named" in out.stderr:
            tail = f"handcap is not installed for {python} ({tail})"
        raise EngineError(f"the engine's self-test failed (exit code {out.returncode}): {tail}") from None


def report_lines(report: dict) -> list:
    """The self-test report as short lines for the preferences."""
    versions = report.get("versions", {})
    lines = [("Engine OK" if report.get("ok") else "Engine has problems") +
             f": Python {report.get('python')}, handcap {versions.get('handcap')}, torch {versions.get('torch')}",
             f"Device {report.get('device', '?')}, GPU {report.get('gpu') or 'none'}, {report.get('threads', '?')} CPU threads"]
    if report.get("estimate"):
        e = report["estimate"]
        lines.append(f"Bundled photo: {e['hands']} hand(s) in {e['estimate_s']} s (engine loaded in {e['load_s']} s)")
    return lines + [f"Problem: {p}" for p in report.get("problems", [])]
