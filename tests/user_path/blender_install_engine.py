"""In a real Blender (background): the installed extension's Install Engine, then its preference
saved, as a user's click leaves them. ``blender -b --online-mode -P blender_install_engine.py -- RESULT.json``

The Torch setting is taken from $HANDCAP_TORCH (default "DEFAULT": the package index's torch; a
CI machine without an NVIDIA GPU would otherwise pick PyTorch's CPU index, which CI cannot reach)."""

import os
import sys
import time

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from blender_checks import ADDON, expect, finish, script_args, write_result  # noqa: E402

failures = []
(result_path,) = script_args()
expect(ADDON in bpy.context.preferences.addons, f"the extension {ADDON} is enabled", failures)
if failures:
    finish(failures)
prefs = bpy.context.preferences.addons[ADDON].preferences
prefs.torch_build = os.environ.get("HANDCAP_TORCH", "DEFAULT")
expect(bpy.app.online_access, "Blender runs with online access (--online-mode)", failures)
start = time.perf_counter()
outcome = bpy.ops.handcap.install_engine()
seconds = time.perf_counter() - start
module = sys.modules[ADDON + ".preferences"]
job = module._JOB
print(f"Install Engine: {job.state}: {job.message} ({seconds:.0f} s)", flush=True)
expect(outcome == {"FINISHED"} and job.state == "done", "Install Engine finished", failures)
expect(bool(prefs.engine_python) and os.path.isfile(prefs.engine_python), "the Engine Python preference is set", failures)
report = job.report or {}
expect(report.get("ok", False) and report.get("estimate", {}).get("hands", 0) >= 1,
       "the new engine's self-test found the hand in the bundled photo", failures)
bpy.ops.wm.save_userpref()
write_result(result_path, {"seconds": round(seconds, 1), "message": job.message, "engine_python": prefs.engine_python,
                           "report": report, "log": job.log_path})
finish(failures)
