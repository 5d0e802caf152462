"""Install Engine / Check Engine (blender_addon.engine_install) with no network: a private venv
built from hand-made local wheels (``--no-index --find-links``), failures and cancels that leave a
clean state, and the real engine's self-test. One test installs from the package index, skipped
unless HANDCAP_NETWORK_TESTS=1."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile

import pytest

from blender_addon import engine_install, engine_packages
from blender_addon.engine import EngineError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = sys.executable          # Python 3.11: within engine_install.SUPPORTED


def make_wheel(folder, name: str, files: dict, requires: tuple = ()) -> str:
    """A pure-Python wheel ``name-1.0`` holding ``files`` {path: text}, depending on ``requires``."""
    info = f"{name}-1.0.dist-info"
    files = dict(files)
    files[f"{info}/METADATA"] = "Metadata-Version: 2.1\nName: %s\nVersion: 1.0\n%s" % (
        name, "".join(f"Requires-Dist: {r}\n" for r in requires))
    files[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join(record + [f"{info}/RECORD,,"]) + "\n"
    path = os.path.join(folder, f"{name}-1.0-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as z:
        for name_in_zip, text in files.items():
            z.writestr(name_in_zip, text)
    return path


def self_test_main(ok: bool, problem: str = "") -> str:
    """A stand-in ``core/__main__.py`` whose ``self-test --json`` prints a report like the real one's."""
    report = {"ok": ok, "python": "3", "versions": {"handcap": "1.0"}, "problems": [problem] if problem else [],
              "estimate": {"hands": 1, "load_s": 0.1, "estimate_s": 0.1}}
    return ("import json, sys, handcapdep\n"
            "assert sys.argv[1:] == ['self-test', '--json'] and handcapdep.VALUE == 7\n"
            f"print(json.dumps({report!r}))\nsys.exit(0 if {ok} else 1)\n")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    """handcap (a stand-in ``core`` with a self-test) pinned to handcapdep==1.0, both in one folder; a
    broken handcap whose pinned dependency is nowhere; and one that installs but fails its self-test,
    as main 228f6cc's wheel did (a data file missing)."""
    good = tmp_path_factory.mktemp("wheels")
    make_wheel(good, "handcapdep", {"handcapdep/__init__.py": "VALUE = 7\n"})
    handcap = make_wheel(good, "handcap", {"core/__init__.py": "", "core/__main__.py": self_test_main(True)},
                         ("handcapdep==1.0",))
    bad = tmp_path_factory.mktemp("bad")
    broken = make_wheel(bad, "handcap", {"core/__init__.py": ""}, ("handcap-missing-dependency==1.0",))
    unfit = tmp_path_factory.mktemp("unfit")
    make_wheel(unfit, "handcapdep", {"handcapdep/__init__.py": "VALUE = 7\n"})
    failing = make_wheel(unfit, "handcap", {"core/__init__.py": "", "core/__main__.py": self_test_main(
        False, "the engine cannot run: FileNotFoundError: core/hand_model/assets/landmark_offsets.json")},
        ("handcapdep==1.0",))
    return handcap, str(good), broken, failing


def leftovers(folder) -> list:
    return [n for n in os.listdir(folder) if n.startswith(".engine-")]


def install(target, wheel, links, **kw) -> engine_install.InstallJob:
    return engine_install.InstallJob(str(target), [wheel], [links], offline=True, base_python=BASE, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory, wheels):
    handcap, links, _, _ = wheels
    folder = tmp_path_factory.mktemp("user")
    return install(folder / "engine", handcap, links).run(), folder


def test_install_from_local_wheels(installed):
    job, folder = installed
    assert job.state == "done", open(job.log_path).read()[-2000:]
    assert job.python == engine_install.venv_python(str(folder / "engine")) and job.progress == 1.0
    run = subprocess.run([job.python, "-c", "import core, handcapdep, sys; print(sys.prefix)"],
                         capture_output=True, text=True, cwd=str(folder))
    assert run.returncode == 0 and os.path.samefile(run.stdout.strip(), folder / "engine")   # renamed into place
    log = open(job.log_path).read()
    assert "--no-index" in log and "handcapdep" in log and "self-test --json" in log
    assert job.report["ok"] and "1 hand(s) found in the bundled photo" in job.message


def test_an_engine_that_fails_its_self_test_is_a_failed_install(installed, wheels):
    """pip succeeds, the engine cannot estimate: the install fails, says why, and keeps the old engine."""
    job, folder = installed
    failing = wheels[3]
    failed = install(folder / "engine", failing, os.path.dirname(failing)).run()
    assert failed.state == "failed" and "self-test" in failed.message and "landmark_offsets.json" in failed.message
    assert leftovers(folder) == []
    assert subprocess.run([job.python, "-m", "core", "self-test", "--json"], cwd=str(folder)).returncode == 0   # kept


def test_broken_install_is_reported_and_cleaned(installed, wheels):
    handcap, links, broken, _ = wheels
    job, folder = installed
    failed = install(folder / "engine", broken, os.path.dirname(broken)).run()
    assert failed.state == "failed" and "installing handcap" in failed.message and failed.log_path in failed.message
    assert leftovers(folder) == []
    assert subprocess.run([job.python, "-c", "import core, handcapdep"], cwd=str(folder)).returncode == 0  # kept


def test_cancel_leaves_nothing(tmp_path, wheels):
    handcap, links, _, _ = wheels
    job = install(tmp_path / "engine", handcap, links).start()
    job.cancel()
    job.wait(120)
    assert job.state == "cancelled" and not (tmp_path / "engine").exists() and leftovers(tmp_path) == []


def test_offline_needs_local_files(tmp_path):
    with pytest.raises(EngineError, match="offline"):
        engine_install.InstallJob(str(tmp_path / "e"), ["handcap==0.1.0"], offline=True)


def test_python_choice(tmp_path):
    python, why = engine_install.find_base_python([BASE])
    assert python == BASE and "3.11" in why
    old = tmp_path / "python2"
    old.write_text("#!/bin/sh\necho 3 14\n")
    old.chmod(0o755)
    with pytest.raises(EngineError, match=r"3\.14.*install Python 3\.13"):
        engine_install.find_base_python([str(old)])


def test_check_engine_reports_versions_and_device():
    report = engine_install.check_engine(sys.executable, estimate=False, env=dict(os.environ, PYTHONPATH=REPO))
    import torch
    assert report["ok"] and report["versions"]["torch"] == torch.__version__
    assert report["device"] in ("cpu", "cuda") and report["python"] == sys.version.split()[0]
    assert engine_install.report_lines(report)[0].startswith("Engine OK")


def test_check_engine_without_handcap(tmp_path):
    bare = tmp_path / "python"                      # this Python without its site-packages: no handcap
    bare.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")
    bare.chmod(0o755)
    with pytest.raises(EngineError, match="not installed"):
        engine_install.check_engine(str(bare), estimate=False, env=dict(os.environ, PYTHONPATH=str(tmp_path)))


# --- the preferences' operators (bpy) ----------------------------------------------------

@pytest.fixture
def prefs(monkeypatch):
    bpy = pytest.importorskip("bpy")
    import addon_utils
    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_utils.enable("blender_addon", default_set=True)
    yield bpy.context.preferences.addons["blender_addon"].preferences
    addon_utils.disable("blender_addon", default_set=True)


def test_install_engine_operator_replaces_and_sets_the_engine(prefs, installed, wheels, monkeypatch):
    """Offline (the bpy module has no online access) from Local Wheels, over an engine already there;
    then a broken install is reported, and the engine and the preference stay as they were."""
    import bpy
    from blender_addon import preferences
    handcap, links, broken, _ = wheels
    job, folder = installed
    monkeypatch.setattr(preferences, "engine_folder", lambda: str(folder / "engine"))
    assert not bpy.app.online_access
    prefs.local_packages = links
    assert bpy.ops.handcap.install_engine() == {"FINISHED"}
    assert prefs.engine_python == engine_install.venv_python(str(folder / "engine"))
    assert "--no-index" in open(preferences._JOB.log_path).read() and leftovers(folder) == []
    prefs.local_packages = os.path.dirname(broken)
    with pytest.raises(RuntimeError, match="installing handcap and its dependencies failed"):
        bpy.ops.handcap.install_engine()
    assert prefs.engine_python == engine_install.venv_python(str(folder / "engine")) and leftovers(folder) == []
    assert subprocess.run([prefs.engine_python, "-c", "import core, handcapdep"], cwd=str(folder)).returncode == 0


def test_pip_arguments_offline_cpu_only_and_local_folders():
    base = ["install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off"]
    assert engine_packages.pip_arguments(["h.whl"]) == base + ["h.whl"]
    assert engine_packages.pip_arguments(["h.whl"], cpu_only=True) == base + [
        "--extra-index-url", "https://download.pytorch.org/whl/cpu", "h.whl"]
    assert engine_packages.pip_arguments(["h.whl"], ["/w"], offline=True, cpu_only=True) == base + [
        "--no-index", "--find-links", "/w", "h.whl"]              # offline: the local wheels decide


def test_cpu_index_only_on_linux_and_automatic_without_an_nvidia_gpu():
    wants = engine_packages.wants_cpu_index
    assert wants("AUTO", "linux", has_nvidia=False) and not wants("AUTO", "linux", has_nvidia=True)
    assert wants("CPU", "linux", has_nvidia=True) and not wants("DEFAULT", "linux", has_nvidia=False)
    for system in ("win32", "darwin"):                # their index torch is a CPU build already
        assert not wants("CPU", system) and not wants("AUTO", system, has_nvidia=False)
    assert engine_packages.platform_name(True, "linux") == "linux-cpu"
    assert engine_packages.platform_name(False, "linux") == "linux-cuda"
    assert engine_packages.platform_name(False, "win32") == "windows"
    cuda, cpu = engine_packages.ENGINE_SIZES_MB["linux-cuda"], engine_packages.ENGINE_SIZES_MB["linux-cpu"]
    assert cpu[0] < cuda[0] / 4 and cpu[1] < cuda[1] / 3     # the reason to offer it
    assert engine_packages.size_text(False, "linux") == "about 2.8 GB to download, 5.2 GB on disk"
    assert engine_packages.size_text(True, "linux") == "about 360 MB to download, 1.2 GB on disk"


def test_download_meter_counts_megabytes_from_pips_lines():
    meter = engine_packages.DownloadMeter(expected_mb=2048)
    lines = ["Collecting torch==2.13.0",
             "  Downloading torch-2.13.0-cp313-cp313-manylinux_2_28_x86_64.whl (906.4 MB)",
             "Collecting numpy", "  Using cached numpy-2.5.5-cp313-cp313-manylinux_2_28_x86_64.whl.metadata (62 kB)",
             "  Downloading numpy-2.5.5-cp313-cp313-manylinux_2_28_x86_64.whl (16.1 MB)",
             "Installing collected packages: numpy, torch"]
    named = [meter.feed(line) for line in lines]
    assert named == [False, True, False, False, True, False]          # a package's metadata is no download
    assert abs(meter.done_mb - (906.4 + 16.1)) < 1e-6 and meter.current is None
    assert abs(meter.fraction - meter.done_mb / 2048) < 1e-9 and meter.text() == "922 of ~2.0 GB"
    meter.feed("  Downloading opencv_contrib_python-4.14.0-cp37-abi3-manylinux_2_28_x86_64.whl (71.2 MB)")
    assert "downloading opencv_contrib_python-4.14.0" in meter.text() and meter.text().endswith("(71 MB)")
    meter.feed("  Downloading big.whl (2.5 GB)")
    meter.feed("done")
    assert meter.fraction == 0.99                      # never "finished" before pip is


def test_check_engine_operator(prefs, monkeypatch):
    import bpy
    from blender_addon import preferences
    monkeypatch.setenv("PYTHONPATH", REPO)
    prefs.engine_python = sys.executable
    assert bpy.ops.handcap.check_engine() == {"FINISHED"}
    assert preferences._REPORT[0].startswith("Engine OK") and "torch" in preferences._REPORT[0]
    assert any(line.startswith("Bundled photo: 1 hand(s)") for line in preferences._REPORT)


@pytest.mark.skipif(os.environ.get("HANDCAP_NETWORK_TESTS") != "1", reason="set HANDCAP_NETWORK_TESTS=1 (downloads GBs)")
def test_install_from_the_package_index(tmp_path):
    wheel_dir = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(wheel_dir), REPO], check=True)
    (wheel,) = wheel_dir.glob("handcap-*.whl")
    job = engine_install.InstallJob(str(tmp_path / "engine"), [str(wheel)], base_python=BASE).run()
    assert job.state == "done", job.message
    assert engine_install.check_engine(job.python)["ok"]
