"""Batch estimation beyond one process: ``handcap estimate INPUT... -o OUT --ray [ADDRESS]``.

``plan``: which inputs still need work and how they are grouped into tasks (no ray, no torch);
``worker``: one engine that estimates a task's inputs, as ``handcap estimate`` does (no ray);
``ray_batch``: the Ray driver (actors, retries, progress). Only ``ray_batch`` imports ray, and
the command line imports this package only when ``--ray`` is given.
"""
