"""Command line of the synthetic data: write a FreiHAND-layout dataset, a contact sheet, or time it.

    python -m training.synth --out DIR --count N [--split train|heldout] [--seed S] [--size 224]
                             [--backgrounds DIR] [--workers W]
    python -m training.synth --grid docs/synth_samples.png [--seed S]
    python -m training.synth --benchmark N [--workers W]
    python -m training.synth --video OUT_DIR --clips N [--seed S] [--frames F] [--motion-blur S]
"""

from __future__ import annotations

import argparse
import os
import time

HELP = """\
Render the open hand model (both sides, natural poses and shapes, random views, distances and
focal lengths, skin tones, lighting, forearms and sleeves) over procedural backgrounds or your
photos, with occluders, and keep the exact ground truth: 2D/3D keypoints, vertices, mask, pose,
shape, intrinsics. Sample i of a (seed, split) is always the same image.

--split train writes training/rgb, training/mask and training_{K,xyz,verts,mano,scale}.json;
--split heldout writes the evaluation/* equivalents, rendered with settings training never
draws (focal lengths, skin tones, light colours, background families). handcap_meta.json
records the hand model, split, seed, count and which samples are left hands; *_mano.json holds
open-hand parameters (48 pose, 10 betas, 3 translation), not MANO. See
training/synth/freihand_writer.py for the details.

--video renders clips for the video benchmark instead (training/synth/sequences.py): 640 x 480,
30 fps mp4 files of one or two hands moving between natural poses, slow and fast, crossing,
occluded by a passing bar or leaving the picture, each with a <clip>_K.npy intrinsics sidecar and a
<clip>_truth.npz of exact per-frame 3D/2D keypoints, landmark points, identities and visibility.
Score them with: python -m training.evaluate --video OUT_DIR"""


def benchmark(count: int, workers: int, size: int) -> float:
    """Images per second of a DataLoader over SyntheticHands (batches of 32, after a warm-up)."""
    from torch.utils.data import DataLoader

    from .dataset import WORKER_CONTEXT, SyntheticHands

    loader = DataLoader(SyntheticHands(count=None, size=size), batch_size=32, num_workers=workers,
                        multiprocessing_context=WORKER_CONTEXT if workers else None)
    batches = iter(loader)
    for _ in range(2 + workers):  # start-up: GL contexts, texture pools
        next(batches)
    start, done = time.perf_counter(), 0
    while done < count:
        done += next(batches)["image"].shape[0]
    return done / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.synth", description=HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", metavar="DIR", help="write a dataset in the FreiHAND folder layout here")
    parser.add_argument("--count", type=int, default=1000, help="number of samples to write (default: %(default)s)")
    parser.add_argument("--split", choices=["train", "heldout"], default="train",
                        help="scene style and FreiHAND split: train -> training/*, heldout -> evaluation/* "
                             "(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default: %(default)s)")
    parser.add_argument("--size", type=int, default=224, help="image side in pixels (default: %(default)s)")
    parser.add_argument("--backgrounds", metavar="DIR",
                        help="folder of photos (searched recursively) used for half the backgrounds")
    parser.add_argument("--workers", type=int, default=None,
                        help="rendering processes (default: the number of CPUs, up to 8; none under 200 samples)")
    parser.add_argument("--grid", metavar="IMAGE", help="write a labelled contact sheet of samples instead (.png/.jpg)")
    parser.add_argument("--benchmark", type=int, metavar="N", help="time rendering N samples and print images/s")
    parser.add_argument("--video", metavar="OUT_DIR", help="render benchmark video clips with ground truth here")
    parser.add_argument("--clips", type=int, default=4, help="with --video: number of clips (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=75, help="with --video: frames per clip (default: %(default)s)")
    parser.add_argument("--motion-blur", type=int, default=1, metavar="S",
                        help="with --video: each frame is the mean of S renders over a half-frame open shutter, "
                             "as a camera blurs fast fingers (default: %(default)s, no blur; 8 is strong)")
    args = parser.parse_args(argv)
    if sum(x is not None for x in (args.out, args.grid, args.benchmark, args.video)) != 1:
        parser.error("give exactly one of --out DIR, --grid IMAGE, --benchmark N or --video OUT_DIR")
    if args.video:
        if args.clips < 1 or args.frames < 12 or args.motion_blur < 1:
            parser.error("--clips and --motion-blur must be at least 1 and --frames at least 12")
        from .sequences import write_clips
        print(write_clips(args.video, args.clips, args.seed, args.frames, args.motion_blur))
        return 0
    if args.size < 16:
        parser.error("--size must be at least 16")
    if args.grid:
        from .preview import write_grid
        print(write_grid(args.grid, seed=args.seed, backgrounds=args.backgrounds))
        return 0
    if args.benchmark is not None:
        workers = args.workers or 0
        print(f"{benchmark(args.benchmark, workers, args.size):.1f} images/s at {args.size} px "
              f"({workers} DataLoader workers, {os.cpu_count()} CPUs)")
        return 0
    if args.count < 1:
        parser.error("--count must be at least 1")
    workers = args.workers if args.workers is not None else (0 if args.count < 200 else min(os.cpu_count() or 1, 8))
    from .freihand_writer import write_freihand
    print(write_freihand(args.out, args.count, args.split, args.seed, args.size, args.backgrounds, workers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
