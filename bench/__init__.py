"""handcap's benchmark: speed and accuracy side by side with the peers, in one table.

    python -m bench [--sections engine,gpu,blender,train,accuracy,agreement,perception,people,ray,live,livetruth]
                    [--repeat N] [--frames N]
                    [--out DIR] [--quick]

Sections (each runs in a process of its own and adds rows to one table):

  engine     the engine on this CPU, 640x480 video: frames/s end to end and ms/frame per stage
             (decode, detect, crop, network, refine, smooth, write), fast and accurate models,
             beside MediaPipe's hand tracker on the same frames           (bench/engine.py)
  gpu        the network alone on the GPU: crops/s at batch 1, 32, 256 in bf16, against the bare
             forward pass of its backbone (the ceiling)                     (bench/gpu.py)
  blender    rig build, keyframes for 10,000 frames, whole import, FBX and GLB export (bench/blender.py)
  train      training images/s with training.train's loop, CPU (and GPU)    (bench/train.py)
  accuracy   PA-MPJPE and 3D PCK AUC on held-out synthetic renders          (bench/accuracy.py)
  agreement  2D PCK@0.1/0.2 against MediaPipe's landmarks on ../shared/real_images (bench/accuracy.py)
  perception handcap's palm detector and hand-landmark network (core/perception) on the CPU:
             landmark crops/s at batch 1, 32, 256 and palm ms per 192 px image, beside MediaPipe's
             own runtime on the same models                              (bench/perception.py)
  people     every hand in photos of people: recall (side right) on the 25 annotated photos of
             ../shared/real_images beside MediaPipe Hands alone, and seconds per photo by size
                                                                          (bench/hand_recall.py)
  ray        clips/minute of 'handcap estimate' over a folder of 640x480 clips, plain against
             '--ray local --workers 2', whole commands                    (bench/scale_out.py)
  live       handcap live on a 640x480 video read as the add-on reads it: latency per frame,
             frames/s, ms per frame by stage, and the add-on's Live timer in bpy (bench/live.py)
  livetruth  live records against 'handcap estimate --smoothing 0' on ../shared/real3d/ge_dev's photos
             played as a clip, both scored against the 3D truth (PA-MPJPE)  (bench/live_truth.py)

Every timing is the median of ``--repeat`` runs after a warm-up run, with the spread (min-max).
The table is printed and written atomically to DIR/bench.md and DIR/bench.json (default
bench/results/) with the date, the machine and the command. ``--quick`` is a smoke run (tiny
sizes, one run each): its numbers mean nothing.
"""

SECTIONS = ("engine", "gpu", "blender", "train", "accuracy", "agreement", "perception", "people", "ray", "live",
            "livetruth")
