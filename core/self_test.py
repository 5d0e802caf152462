"""``handcap self-test``: is this Python's engine complete and working? Versions, CPU/GPU, and one
estimate on the bundled photo (the add-on's Check Engine shows this report)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
import time

DEMO_PHOTO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "demo_hand.jpg")


def version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def self_test(device: str = "auto", estimate: bool = True) -> dict:
    """The report: {"ok", "python", "platform", "versions", "device", "gpu", "threads", "estimate", "problems"}.
    ``ok`` is False when a library is missing or the engine cannot run on the bundled photo."""
    report = {"python": sys.version.split()[0], "executable": sys.executable, "platform": platform.platform(),
              "versions": {name: version(name) for name in ("handcap", "torch", "torchvision", "numpy",
                                                            "opencv-contrib-python", "safetensors", "pillow",
                                                            "scipy")},
              "problems": []}
    try:
        import torch
        report["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        report["threads"] = torch.get_num_threads()
        from .engine.network import resolve_device
        report["device"] = str(resolve_device(device))
    except Exception as e:               # a broken install: say what is wrong, do not crash
        report["problems"].append(f"{type(e).__name__}: {e}")
        report["ok"] = False
        return report
    if estimate:
        try:
            from .engine.pipeline import Engine, EngineOptions
            from .engine.run import intrinsics, read_image
            start = time.perf_counter()
            engine = Engine(EngineOptions(device=device))
            loaded = time.perf_counter()
            rgb, (width, height) = read_image(DEMO_PHOTO)
            hands = engine.estimate_frames([rgb], intrinsics(width, height))[0]
            engine.close()
            report["estimate"] = {"photo": DEMO_PHOTO, "hands": len(hands), "load_s": round(loaded - start, 2),
                                  "estimate_s": round(time.perf_counter() - loaded, 2)}
            if not hands:
                report["problems"].append("no hand found in the bundled photo")
        except Exception as e:           # any failure is the report, not a crash
            report["problems"].append(f"the engine cannot run: {type(e).__name__}: {e}")
    report["ok"] = not report["problems"]
    return report


def report_text(report: dict) -> str:
    lines = [f"handcap self-test: {'OK' if report['ok'] else 'PROBLEMS'}",
             f"  Python {report['python']} ({report['executable']}) on {report['platform']}",
             "  " + ", ".join(f"{k} {v}" for k, v in report["versions"].items())]
    if "device" in report:
        lines.append(f"  device {report['device']}, GPU {report['gpu'] or 'none'}, {report['threads']} CPU threads")
    if "estimate" in report:
        e = report["estimate"]
        lines.append(f"  bundled photo: {e['hands']} hand(s), engine loaded in {e['load_s']} s, estimate {e['estimate_s']} s")
    lines += [f"  problem: {p}" for p in report["problems"]]
    return "\n".join(lines)
