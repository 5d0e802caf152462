"""The engine process runner (no bpy) and the Estimate Hand operator, with a fake engine."""

from __future__ import annotations

import json
import os
import stat
import sys
import time

import pytest

from blender_addon import engine
from tests.test_blender_support import make_fake_engine, save, scene_fingerprint, toy_capture, write_png


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fake ``core`` first on PYTHONPATH, a capture for it to hand back, a photo to 'estimate'."""
    monkeypatch.setenv("PYTHONPATH", make_fake_engine(tmp_path))
    monkeypatch.setenv("FAKE_ENGINE_CAPTURE", save(toy_capture(frames=3), tmp_path / "made.npz"))
    monkeypatch.setenv("FAKE_ENGINE_EMPTY", save(toy_capture(frames=1, sides=()), tmp_path / "empty.npz"))
    monkeypatch.setenv("FAKE_ENGINE_MODE", "ok")
    photo = write_png(tmp_path / "photo.png")
    out = tmp_path / "out"
    return photo, str(out)


def run(photo, out, stall_timeout=engine.STALL_TIMEOUT, **options):
    command = engine.estimate_command(sys.executable, photo, out, engine.EstimateOptions(**options))
    os.makedirs(out, exist_ok=True)
    return engine.EngineRun(command, cwd=str(os.path.dirname(out)), out_dir=out, stall_timeout=stall_timeout).start()


PARTIAL = ".photo.npz.x1y2z3.handcap-tmp.npz"     # the fake engine's half-written output


def test_progress_outputs_and_options(fake):
    photo, out = fake
    r = run(*fake, hand="left", smoothing=0.25, frame_end=40)
    seen = []
    r.wait(timeout=60, on_event=lambda event, run: seen.append(run.progress.text()))
    assert r.error is None and r.returncode == 0
    assert r.outputs == [os.path.join(out, "photo.npz")] and os.path.isfile(r.outputs[0])
    assert r.progress.fraction == 1.0
    assert seen[0] == "detect 0/3" and "track 2/3: frame 2" in seen       # non-JSON line skipped
    with open(os.path.join(out, "argv.json")) as f:
        argv = json.load(f)
    assert argv[:5] == ["estimate", os.path.abspath(photo), "-o", os.path.abspath(out), "--progress"]
    assert argv[5:] == ["json", "--hand", "left", "--smoothing", "0.25", "--frame-end", "40"]


def test_poll_never_blocks(fake, monkeypatch):
    monkeypatch.setenv("FAKE_ENGINE_MODE", "slow")
    r = run(*fake)
    start = time.monotonic()
    while time.monotonic() - start < 1.0:
        r.poll()
        time.sleep(0.01)
    assert not r.finished and r.progress.stage in ("detect", "track", "starting")
    t = time.monotonic()
    r.poll()
    assert time.monotonic() - t < 0.05
    r.cancel()


def test_cancel_stops_the_process(fake, monkeypatch):
    monkeypatch.setenv("FAKE_ENGINE_MODE", "slow")
    r = run(*fake)
    deadline = time.monotonic() + 60
    while r.progress.stage != "track":
        assert not r.finished and time.monotonic() < deadline, r.error
        r.poll()
        time.sleep(0.01)
    t = time.monotonic()
    r.cancel()
    assert time.monotonic() - t < 5
    assert r.finished and r.cancelled and r.error == "cancelled"
    assert r._process.poll() is not None
    assert os.listdir(fake[1]) == []                 # its partial output and argv.json are gone


def test_crash_reports_the_last_stderr_lines(fake, monkeypatch):
    monkeypatch.setenv("FAKE_ENGINE_MODE", "crash")
    r = run(*fake).wait(timeout=60)
    assert r.returncode == 1 and r.outputs == []
    assert "exit code 1" in r.error and "RuntimeError: model exploded" in r.error


def test_engine_error_line_is_the_message(fake, monkeypatch):
    monkeypatch.setenv("FAKE_ENGINE_MODE", "error")
    r = run(*fake).wait(timeout=60)
    assert r.returncode == 1 and r.error == f"{fake[0]}: not a readable image (corrupt or not an image)"
    with pytest.raises(engine.EngineError, match="not a readable image"):
        engine.run_estimate(sys.executable, fake[0], fake[1])


def test_no_hand_is_not_a_failure(fake, monkeypatch):
    """Exit code 3: the photo was read and had no hand; its capture (without hands) comes back."""
    monkeypatch.setenv("FAKE_ENGINE_MODE", "nohand")
    r = run(*fake).wait(timeout=60)
    assert r.returncode == 3 and r.no_hand and r.error is None
    assert r.outputs == [os.path.join(fake[1], "photo.npz")] and os.path.isfile(r.outputs[0])
    assert engine.run_estimate(sys.executable, fake[0], fake[1]) == r.outputs


def test_killed_engine_says_so_and_leaves_nothing(fake, monkeypatch):
    monkeypatch.setenv("FAKE_ENGINE_MODE", "killed")
    r = run(*fake).wait(timeout=60)
    assert r.returncode == -9 and r.outputs == []
    assert r.error.startswith("the engine was killed by SIGKILL (out of memory?)"), r.error
    assert os.listdir(fake[1]) == []


def test_hung_engine_is_stopped_after_the_stall_timeout(fake, monkeypatch):
    monkeypatch.setenv("FAKE_ENGINE_MODE", "hang")
    t = time.monotonic()
    r = run(*fake, stall_timeout=1.5).wait(timeout=60)
    assert time.monotonic() - t < 15 and r._process.poll() is not None
    assert r.error == "the engine said nothing for 1.5 s (last: track 1/3: hang) and was stopped"
    assert os.listdir(fake[1]) == []
    with pytest.raises(engine.EngineError, match="took longer than 1 s and was stopped"):
        engine.run_estimate(sys.executable, fake[0], fake[1], timeout=1)
    assert os.listdir(fake[1]) == []


def test_engine_not_installed(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))          # no core anywhere...
    python = tmp_path / "isolated-python"                    # ...and no site-packages
    python.write_text(f"#!/bin/sh\nexec {sys.executable} -I -S \"$@\"\n")
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(engine.EngineError, match="engine is not installed"):
        engine.run_estimate(str(python), write_png(tmp_path / "p.png"), str(tmp_path / "o"))


def test_cannot_start(tmp_path):
    with pytest.raises(engine.EngineError, match="cannot start the engine"):
        engine.EngineRun([str(tmp_path / "missing-python"), "-m", "core"]).start()


def test_find_engine_python(tmp_path, monkeypatch):
    monkeypatch.delenv(engine.ENV_PYTHON, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(engine.EngineError, match="engine not found: set the engine's Python"):
        engine.find_engine_python("")
    script = tmp_path / "handcap"                             # a console script on PATH
    script.write_text(f"#!{sys.executable}\nimport sys\n")
    script.chmod(0o755)
    assert engine.find_engine_python("") == sys.executable
    monkeypatch.setenv(engine.ENV_PYTHON, sys.executable)
    assert engine.find_engine_python("") == sys.executable
    with pytest.raises(engine.EngineError, match="preferences"):
        engine.find_engine_python(str(tmp_path / "nope"))
    assert engine.find_engine_python(sys.executable) == sys.executable


def test_default_options_pass_no_flags():
    assert engine.EstimateOptions().arguments() == []
    assert engine.EstimateOptions(max_hands=1, frame_step=2, device="cpu").arguments() == [
        "--max-hands", "1", "--frame-step", "2", "--device", "cpu"]


# --- the operator (bpy) ----------------------------------------------------------------

@pytest.fixture
def addon():
    bpy = pytest.importorskip("bpy")
    import blender_addon
    blender_addon.register()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield bpy
    blender_addon.unregister()


def test_estimate_operator_builds_the_hand(addon, fake, monkeypatch):
    bpy = addon
    photo, out = fake
    monkeypatch.setenv(engine.ENV_PYTHON, sys.executable)
    settings = bpy.context.scene.handcap
    settings.input_path, settings.output_dir, settings.hand = photo, out, "right"
    # no window in the bpy module: INVOKE falls back to running synchronously
    assert bpy.ops.handcap.estimate("INVOKE_DEFAULT") == {"FINISHED"}
    assert [o.type for o in bpy.data.collections["photo"].objects if o.type == "ARMATURE"] == ["ARMATURE"]
    assert not bpy.context.window_manager.handcap.running
    assert json.load(open(os.path.join(out, "argv.json")))[-2:] == ["--hand", "right"]


@pytest.mark.parametrize("mode,message", [("error", "photo.png: not a readable image"),
                                          ("crash", "exit code 1.*model exploded"),
                                          ("killed", "killed by SIGKILL"),
                                          ("hang", "said nothing for 1.5 s")])
def test_estimate_operator_reports_engine_errors(addon, fake, monkeypatch, mode, message):
    """A failing, crashing, killed or hung engine: the scene stays as it was, the report says why,
    and the output folder is left as it was found."""
    bpy = addon
    monkeypatch.setenv(engine.ENV_PYTHON, sys.executable)
    monkeypatch.setenv("FAKE_ENGINE_MODE", mode)
    monkeypatch.setattr(engine, "STALL_TIMEOUT", 1.5)
    os.makedirs(fake[1])
    bpy.context.scene.handcap.output_dir = fake[1]
    before = scene_fingerprint()
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.handcap.estimate(input_path=fake[0])
    assert scene_fingerprint() == before
    assert not bpy.context.window_manager.handcap.running
    assert os.listdir(fake[1]) == []


def test_estimate_operator_no_hand_is_a_warning(addon, fake, monkeypatch):
    bpy = addon
    monkeypatch.setenv(engine.ENV_PYTHON, sys.executable)
    monkeypatch.setenv("FAKE_ENGINE_MODE", "nohand")
    before = scene_fingerprint()
    assert bpy.ops.handcap.estimate(input_path=fake[0]) == {"CANCELLED"}     # no exception: not an error
    assert scene_fingerprint() == before and not bpy.context.window_manager.handcap.running


def test_estimate_operator_without_engine_or_input(addon, tmp_path, monkeypatch):
    bpy = addon
    monkeypatch.delenv(engine.ENV_PYTHON, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="choose a photo or video first"):
        bpy.ops.handcap.estimate()
    with pytest.raises(RuntimeError, match="no such file"):
        bpy.ops.handcap.estimate(input_path=str(tmp_path / "missing.jpg"))
    with pytest.raises(RuntimeError, match="engine not found"):
        bpy.ops.handcap.estimate(input_path=write_png(tmp_path / "p.png"))


class ModalDriver:
    """Drives the operator's own modal() with fake timer/key events (the bpy module has no
    window, so Blender cannot run the modal loop itself)."""

    def __init__(self):
        from blender_addon.ops_estimate import HANDCAP_OT_estimate as op
        for name in ("_start", "modal", "_finish", "_show", "_stop_ui", "cancel"):
            setattr(self, name, getattr(op, name).__get__(self))
        self.input_path, self._run, self._timer, self.reports = "", None, None, []

    def report(self, kind, message):
        self.reports.append((set(kind), message))

    def loop(self, context, stop_after=None):
        """Send TIMER events until modal() is done; ``stop_after`` events then an Esc press."""
        from types import SimpleNamespace
        for i in range(3000):
            event = SimpleNamespace(type="TIMER", value="NOTHING")
            if stop_after is not None and i == stop_after:
                event = SimpleNamespace(type="ESC", value="PRESS")
            result = self.modal(context, event)
            if result != {"PASS_THROUGH"}:
                return result
            time.sleep(0.01)
        raise AssertionError("modal() never finished")


def test_modal_loop_shows_progress_and_builds(addon, fake, monkeypatch):
    bpy = addon
    monkeypatch.setenv(engine.ENV_PYTHON, sys.executable)
    bpy.context.scene.handcap.input_path = fake[0]
    driver = ModalDriver()
    assert driver._start(bpy.context)
    state = bpy.context.window_manager.handcap
    assert state.running and not bpy.ops.handcap.estimate.poll()     # one estimate at a time
    statuses = []
    real_show = driver._show
    driver._show = lambda context: (real_show(context), statuses.append(state.status))
    assert driver.loop(bpy.context) == {"FINISHED"}
    assert statuses[0] == "starting" and statuses[-1] == "done 3/3" and not state.running
    assert "photo" in bpy.data.collections


@pytest.mark.parametrize("how", ["esc", "button"])
def test_modal_loop_cancels(addon, fake, monkeypatch, how):
    bpy = addon
    monkeypatch.setenv(engine.ENV_PYTHON, sys.executable)
    monkeypatch.setenv("FAKE_ENGINE_MODE", "slow")
    before = scene_fingerprint()
    bpy.context.scene.handcap.input_path = fake[0]
    driver = ModalDriver()
    assert driver._start(bpy.context)
    deadline = time.monotonic() + 60
    while driver._run.progress.stage != "track":
        assert time.monotonic() < deadline
        assert driver.modal(bpy.context, type("E", (), {"type": "TIMER", "value": ""})) == {"PASS_THROUGH"}
        time.sleep(0.01)
    if how == "button":
        assert bpy.ops.handcap.cancel_estimate() == {"FINISHED"}
        result = driver.loop(bpy.context)
    else:
        result = driver.loop(bpy.context, stop_after=0)
    assert result == {"CANCELLED"} and driver.reports == [({"WARNING"}, "Estimate Hand: cancelled")]
    assert driver._run._process.poll() is not None
    assert not bpy.context.window_manager.handcap.running and scene_fingerprint() == before
    assert not os.path.exists(driver._run.out_dir)   # its partial file removed, then its own temporary folder


def test_modal_loop_no_hand_warns_and_builds_nothing(addon, fake, monkeypatch):
    bpy = addon
    monkeypatch.setenv(engine.ENV_PYTHON, sys.executable)
    monkeypatch.setenv("FAKE_ENGINE_MODE", "nohand")
    before = scene_fingerprint()
    bpy.context.scene.handcap.input_path = fake[0]
    driver = ModalDriver()
    assert driver._start(bpy.context)
    assert driver.loop(bpy.context) == {"CANCELLED"}
    assert driver.reports == [({"WARNING"}, "Estimate Hand: no hand found in photo.png")]
    assert scene_fingerprint() == before and not bpy.context.window_manager.handcap.running


class RecordingLayout:
    """Stands in for UILayout (none exists without a window): records what a panel draws, and
    into ``labels`` each property's label as drawn (``text``, else the property's name)."""

    def __init__(self, log, labels: list = None):
        self.log, self.labels = log, labels if labels is not None else []

    def prop(self, data, name, **kw):
        assert name in data.bl_rna.properties, name
        self.log.append(("prop", name))
        self.labels.append((name, kw.get("text", data.bl_rna.properties[name].name)))

    def operator(self, idname, **kw):
        from types import SimpleNamespace
        category, name = idname.split(".")
        assert hasattr(getattr(__import__("bpy").ops, category), name), idname
        self.log.append(("operator", idname))
        return SimpleNamespace()                   # operator properties get set on it

    def progress(self, **kw):
        self.log.append(("progress", kw["text"]))

    def label(self, **kw):
        self.log.append(("label", kw.get("text", "")))

    def column(self, **kw):
        return self

    row = box = column

    def separator(self, **kw):
        pass


@pytest.mark.parametrize("running", [False, True])
def test_panel_draws_settings_and_the_right_button(addon, running):
    from types import SimpleNamespace

    from blender_addon.panel import HANDCAP_PT_estimate
    bpy = addon
    state = bpy.context.window_manager.handcap
    state.running, state.status = running, "track 2/5"
    log = []
    HANDCAP_PT_estimate.draw(SimpleNamespace(layout=RecordingLayout(log)), bpy.context)
    state.running = False
    assert ("prop", "input_path") in log and ("prop", "device") in log and ("prop", "smoothing") in log
    assert (("operator", "handcap.cancel_estimate") in log) == running
    assert (("progress", "track 2/5") in log) == running
    assert (("operator", "handcap.estimate") in log) != running
    assert ("operator", "handcap.import_capture") in log


@pytest.mark.parametrize("panel", ["HANDCAP_PT_estimate", "HANDCAP_PT_regions_image"])
def test_panel_first_row_is_labelled(addon, panel):
    """The first row, the photo or video to estimate from, says what it asks for."""
    from types import SimpleNamespace

    from blender_addon import panel as panels
    labels = []
    getattr(panels, panel).draw(SimpleNamespace(layout=RecordingLayout([], labels)), addon.context)
    if panel == "HANDCAP_PT_estimate":               # first the switch: one view or several
        assert labels.pop(0) == ("input_mode", "Input")
    assert labels[0] == ("input_path", "Photo or Video")
