"""Install Engine / Check Engine without bpy: a private virtual environment for the engine.

    job = InstallJob(target, wheels=[...], find_links=[...], offline=False, cpu_only=False, log_path=...)
    job.start(); ... job.poll() ...; job.cancel()          # or job.run() to the end

The engine (torch, OpenCV) cannot live in Blender's own Python, so it gets a virtual environment
of its own, ``target`` (the extension's user folder; ``preferences`` chooses it). The venv is built
in a temporary folder beside ``target`` and renamed into place only when pip succeeded and the new
engine passed its self-test (a real estimate on the bundled photo, ``core self-test``), so a second
click, a cancel or a failure leaves the previous engine (or nothing) as it was, never half an
install, and an engine that installs but cannot estimate is a failed install that says why.
Everything pip says goes to ``log_path``; the megabytes it fetched are the progress
(``engine_packages.DownloadMeter``).

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
from .engine_packages import ENGINE_SIZES_MB, DownloadMeter, pip_arguments, platform_name

SUPPORTED = ((3, 11), (3, 13))                 # inclusive range of Pythons the engine's wheels exist for
SELF_TEST_TIMEOUT = 600.0                      # seconds for the new engine's first load and estimate


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


class InstallJob:
    """One Install Engine: venv in a temporary folder, pip install, rename to ``target``.

    ``state``: "idle" | "running" | "done" | "failed" | "cancelled"; ``progress`` 0..1; ``message``
    (the last step, or why it failed); ``python`` (the engine's interpreter when done)."""

    def __init__(self, target: str, wheels: list, find_links: list = (), offline: bool = False,
                 log_path: str = "", base_python: str = "", cpu_only: bool = False, check_env: dict = None):
        if not wheels:
            raise EngineError("nothing to install: no handcap wheel in the extension and no local wheel or folder given")
        if offline and not find_links and not all(os.path.isfile(w) or os.path.isdir(w) for w in wheels):
            raise EngineError("Blender is offline (Preferences > System > Allow Online Access): install from a "
                              "local wheel or folder")
        self.target = os.path.abspath(target)
        self.wheels, self.find_links, self.offline, self.cpu_only = list(wheels), list(find_links), offline, cpu_only
        self.log_path = log_path or self.target + ".log"
        self.base_python = base_python
        self.check_env = check_env            # the self-test's environment (default: this one's)
        self.meter = DownloadMeter(ENGINE_SIZES_MB[platform_name(cpu_only)][0])
        self.report = None                    # the new engine's self-test report, once it ran
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
                self._step(log, "installing handcap and its dependencies", 0.05,
                           [python, "-m", "pip", *pip_arguments(self.wheels, self.find_links, self.offline, self.cpu_only)])
                self._self_test(log, python)
            self._replace(building)
            self.python = venv_python(self.target)
            estimate = (self.report or {}).get("estimate", {})
            self.state, self.progress = "done", 1.0
            self.message = (f"engine installed and checked: {estimate.get('hands', '?')} hand(s) found in the bundled "
                            f"photo ({self.python})")
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
        last = ""
        for line in self._process.stdout:
            log.write(line)
            log.flush()
            words = line.strip()
            self.meter.feed(words)
            if words.startswith("Installing collected packages:"):
                count = len(words.split(":", 1)[1].split(","))
                self.message = f"{what}: unpacking {count} packages ({self.meter.done_mb:.0f} MB downloaded)"
            elif words.startswith(("Collecting", "Processing", "Downloading", "Using cached")):
                self.progress = max(self.progress, 0.05 + 0.8 * self.meter.fraction)
                self.message = f"{what}: {self.meter.text()}" if self.meter.done_mb or self.meter.current else \
                    f"{what}: {words[:120]}"
            if words:
                last = words
        code = self._process.wait()
        self._process = None
        if self._cancel.is_set():
            raise EngineError("cancelled")
        if code != 0:
            raise EngineError(f"{what} failed (exit code {code}): {last[:300]}")

    def _self_test(self, log, python: str) -> None:
        """The new engine's self-test (``core self-test``: versions, device, a real estimate on the
        bundled photo); an engine that cannot estimate fails the install, naming the problem."""
        if self._cancel.is_set():
            raise EngineError("cancelled")
        self.message, self.progress = "checking the engine: an estimate on the bundled photo", max(self.progress, 0.9)
        log.write(f"$ {python} -m core self-test --json\n")
        log.flush()
        self.report = check_engine(python, timeout=SELF_TEST_TIMEOUT, env=self.check_env)
        log.write(json.dumps(self.report) + "\n")
        log.flush()
        if not self.report.get("ok"):
            problems = "; ".join(self.report.get("problems", [])) or "no reason given"
            raise EngineError(f"the new engine failed its self-test: {problems[:400]}")

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
