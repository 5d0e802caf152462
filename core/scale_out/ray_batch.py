"""The Ray driver of ``handcap estimate INPUT... -o OUT --ray [ADDRESS]``: many inputs, many workers.

Each task (a video, or up to PHOTOS_PER_TASK photos of a folder: ``plan``) goes to an actor that
loaded the engine once (``worker.CaptureWorker``, one per ``--cpus-per-task``/``--gpus-per-task``
share of the cluster). The driver keeps every actor busy with one task at a time and prints
progress (inputs done / total, frames/s over the cluster). A worker that dies (killed, out of
memory, its node lost) is restarted by Ray and its task given out again, up to MAX_ATTEMPTS times;
a bad input is one error line, as in a plain run, and the others go on. Inputs whose capture file
in OUT is already complete are skipped, so a killed run resumes where it stopped.

Every worker writes its outputs into OUT itself (atomically, as a plain run): on a cluster, INPUT
and OUT must be at the same paths on every node (a shared file system), and handcap installed there.
The driver itself imports no torch and loads no model.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import time
from typing import Optional

import ray

from core.engine.progress import Progress
from core.engine.inputs import capture_paths

from .plan import Item, finished_hands, leftover_temporaries, make_tasks
from .worker import CaptureWorker, Outcome, Settings

MAX_ATTEMPTS = 3             # a task whose worker is lost this many times fails (its inputs get an error line)
WAIT_SECONDS = 1.0           # progress is refreshed at least this often


@dataclasses.dataclass
class Resources:
    """The cluster share of one worker, and how many workers (0: as many as the cluster holds)."""

    cpus: float = 1.0
    gpus: float = 0.0
    workers: int = 0


@dataclasses.dataclass
class Result:
    """What a run gave, in input order: capture files, inputs failed, inputs without a hand,
    hands per capture file."""

    outputs: list
    failed: int
    no_hand: list
    hands: dict


def connect(address: Optional[str], verbose: bool) -> bool:
    """Join the Ray cluster at ``address`` (None: $RAY_ADDRESS, else the one running on this
    machine, else a new local one with all its cores; 'local': always a new local one). Returns
    whether this call started Ray here (then ``ray.shutdown`` is ours to call)."""
    if ray.is_initialized():
        return False
    ray.init(address=address or None, log_to_driver=verbose,
             logging_level=logging.INFO if verbose else logging.ERROR)
    return True


class ClusterTooSmall(ValueError):
    """Not one worker fits the cluster as it is (and no --workers says to wait for it to grow)."""


def worker_count(resources: Resources, tasks: int) -> int:
    """--workers (they wait for the cluster to have room, e.g. an autoscaling one), else as many
    workers as the cluster's CPUs (and GPUs) hold now; never more than there are tasks."""
    if resources.workers:
        return max(1, min(resources.workers, tasks))
    total = ray.cluster_resources()
    cpus, gpus = total.get("CPU", 0), total.get("GPU", 0)
    fit = int(cpus // resources.cpus) if resources.cpus else tasks
    if resources.gpus:
        fit = min(fit, int(gpus // resources.gpus))
    if fit < 1:
        raise ClusterTooSmall(f"a worker needs {resources.cpus:g} CPU(s) and {resources.gpus:g} GPU(s), and the Ray "
                              f"cluster has {cpus:g} CPU(s) and {gpus:g} GPU(s) (give --workers N to wait for a "
                              "cluster that grows)")
    return min(fit, tasks)


def start_workers(settings: Settings, resources: Resources, count: int) -> list:
    """``count`` actors, each loading the engine once. Ray restarts one whose process dies (its task
    is then given out again by the driver, which counts the attempts)."""
    threads = settings.engine.get("threads") or max(1, round(resources.cpus))
    settings = dataclasses.replace(settings, engine={**settings.engine, "threads": threads})
    env = {"OMP_NUM_THREADS": str(threads), "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3"}
    actor = ray.remote(CaptureWorker).options(num_cpus=resources.cpus, num_gpus=resources.gpus, max_restarts=-1,
                                              max_task_retries=0, runtime_env={"env_vars": env})
    return [actor.remote(settings) for _ in range(count)]


def run(settings: Settings, files: list, address: Optional[str], resources: Resources, progress: Progress,
        verbose: bool = False) -> Result:
    """Estimate ``files`` (inputs already expanded) into ``settings.out_dir`` on Ray."""
    items = [Item(i, path, capture) for i, (path, capture) in enumerate(zip(files, capture_paths(files, settings.out_dir)))]
    outcomes: dict = {}
    todo = []
    for item in items:
        hands = finished_hands(item, settings.overlay)
        if hands is None:
            todo.append(item)
        else:
            outcomes[item.order] = Outcome(item.order, item.source, item.capture, hands, hands == 0, 0, 0.0, [])
    if outcomes:
        progress.warning(f"{len(outcomes)} of {len(items)} input(s) already have a complete capture file in "
                         f"{settings.out_dir}: skipped (remove those files to estimate them again)")
    if todo:
        started = connect(address, verbose)
        try:
            _dispatch(settings, make_tasks(todo), len(items), resources, progress, outcomes)
        finally:
            if started:
                ray.shutdown()
            for path in leftover_temporaries(todo):     # files a killed worker had started
                try:
                    os.unlink(path)
                except OSError:
                    pass
    ordered = [outcomes[i] for i in sorted(outcomes)]
    written = [o for o in ordered if o.capture]
    return Result([o.capture for o in written], len(ordered) - len(written),
                  [o.source for o in written if o.no_hand], {o.capture: o.hands for o in written})


def _dispatch(settings: Settings, tasks: list, total: int, resources: Resources, progress: Progress,
              outcomes: dict) -> None:
    """Give the tasks out to the workers, one at a time each, until all are done or failed.

    A task that fails (its worker died) goes back to the front of the queue, up to MAX_ATTEMPTS
    times; its worker gets no new task until it answers again (Ray restarts it, which takes as long
    as loading the engine), so a restart does not use up the attempts of other tasks."""
    count = worker_count(resources, len(tasks))
    share = f"{resources.cpus:g} CPU" + (f", {resources.gpus:g} GPU" if resources.gpus else "")
    progress.update("inputs", len(outcomes), total, f"starting {count} Ray worker(s) of {share} each for "
                                                    f"{len(tasks)} task(s)", force=True)
    workers = start_workers(settings, resources, count)
    pending = collections.deque(enumerate(tasks))
    attempts = collections.Counter()
    running: dict = {}                # object ref -> (worker, task number, task); number None: "are you back?"
    resting: list = []                # (when to ask again, worker): restarting workers
    frames, start, last_error = 0, None, ""

    def give(worker) -> None:
        if pending:
            number, task = pending.popleft()
            attempts[number] += 1
            running[worker.run.remote(task)] = (worker, number, task)

    def show(force: bool) -> None:
        seconds = time.perf_counter() - start if start is not None else 0.0
        speed = f"{frames / seconds:.1f} frames/s" if seconds > 0 else "starting"
        progress.update("inputs", len(outcomes), total, f"{speed} on {count} worker(s)", force=force)

    try:
        for worker in workers:
            give(worker)
        while pending and (running or resting) or any(number is not None for _, number, _ in running.values()):
            for when, worker in [r for r in resting if r[0] <= time.monotonic()]:
                resting.remove((when, worker))
                running[worker.pid.remote()] = (worker, None, None)
            if running:
                ready, _ = ray.wait(list(running), num_returns=1, timeout=WAIT_SECONDS)
            else:                                                       # every worker is restarting
                time.sleep(WAIT_SECONDS)
                ready = []
            for ref in ready:
                worker, number, task = running.pop(ref)
                try:
                    results = ray.get(ref)
                except ray.exceptions.RayError as e:
                    last_error = _reason(e)
                    if number is not None:                              # lost with its task; Ray restarts it
                        _task_failed(number, task, attempts, pending, outcomes, progress, last_error)
                    if number is not None or not isinstance(e, ray.exceptions.ActorDiedError):
                        resting.append((time.monotonic() + WAIT_SECONDS, worker))   # ask again soon
                    continue                                            # (dead for good: its start failed)
                if number is not None:
                    if start is None:
                        start = time.perf_counter() - sum(o.seconds for o in results)
                    _record(results, outcomes, progress)
                    frames += sum(o.frames for o in results)
                give(worker)
                show(force=True)
            if not ready:
                show(force=False)
        for number, task in pending:                                    # no worker left to run them
            _record(_not_estimated(task, f"no Ray worker could be started (last: {last_error})"), outcomes, progress)
    finally:
        for worker in workers:
            ray.kill(worker, no_restart=True)


def _task_failed(number: int, task, attempts, pending, outcomes: dict, progress: Progress, reason: str) -> None:
    """A task whose worker was lost: back to the front of the queue, or failed after MAX_ATTEMPTS."""
    names = os.path.basename(task.items[0].source) + (f" and {len(task.items) - 1} more" if len(task.items) > 1 else "")
    if attempts[number] < MAX_ATTEMPTS:
        pending.appendleft((number, task))
        progress.warning(f"a Ray worker was lost ({reason}); its task ({names}) is given out again "
                         f"(attempt {attempts[number] + 1} of {MAX_ATTEMPTS})")
    else:
        _record(_not_estimated(task, f"its Ray worker was lost {MAX_ATTEMPTS} times (last: {reason})"), outcomes, progress)


def _not_estimated(task, why: str) -> list:
    """Failed outcomes, with an error line each, for the inputs of a task that could not run."""
    return [Outcome(item.order, item.source, None, 0, False, 0, 0.0, [("error", f"{item.source}: not estimated: {why}")])
            for item in task.items]


def _record(results: list, outcomes: dict, progress: Progress) -> None:
    """Keep a task's outcomes and print their error and warning lines, as a plain run does."""
    for outcome in results:
        outcomes[outcome.order] = outcome
        for kind, text in outcome.messages:
            (progress.error if kind == "error" else progress.warning)(text)


def _reason(error: Exception) -> str:
    """A Ray error's name and first sentence (Ray's messages run on for lines)."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text.split('. ')[0][:160]}"
