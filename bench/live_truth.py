"""Live against ``handcap estimate --smoothing 0`` on real photos with 3D truth (issue 30's check):
ge_dev's photos played as a clip (``training.live_clip_eval``), each command's hands scored against
the truth (PA-MPJPE and root-relative, mm) on the frames both found. The bar: live within 0.5 mm PA."""

from __future__ import annotations

import os

from .common import Options, Row, skipped


def run(options: Options) -> dict:
    if not os.path.isfile(os.path.join(options.ge_dev, "evaluation_xyz.json")):
        return {"skipped": f"no photos with 3D truth in {options.ge_dev}"}
    from training.live_clip_eval import evaluate
    return evaluate(options.ge_dev)


def rows(result: dict) -> list:
    if "skipped" in result:
        return [skipped("livetruth", "live against estimate on ge_dev's photos as a clip", result["skipped"])]
    live, batch = result["live"], result["estimate"]
    where = f"ge_dev's {result['frames'] // result['hold']} photos as a clip ({result['hold']} frames each), " \
            f"{live['frames']} frames both found"
    return [Row("livetruth", f"handcap live: PA-MPJPE, {where}", round(live["pa_mpjpe_mm"], 3), "mm",
                reference=f"estimate --smoothing 0: {batch['pa_mpjpe_mm']:.3f} mm; bar: within 0.5 mm",
                ratio=live["pa_mpjpe_mm"] / batch["pa_mpjpe_mm"]),
            Row("livetruth", f"handcap live: root-relative MPJPE, {where}", round(live["rr_mpjpe_mm"], 3), "mm",
                reference=f"estimate --smoothing 0: {batch['rr_mpjpe_mm']:.3f} mm",
                ratio=live["rr_mpjpe_mm"] / batch["rr_mpjpe_mm"]),
            Row("livetruth", "frames with the hand found: live / estimate", f"{live['found']} / {batch['found']}",
                reference=f"of {result['frames']}")]
