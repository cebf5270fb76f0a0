"""Diagnose run groups on several cores: the CLI on logdirs of thousands of runs.

Each run group is diagnosed on its own (the engine's `diagnose_run_group`), so groups can be
split between processes and their report entries put back in order. Worker processes are forked
when the pool is created, which the CLI does before its reader starts any thread (gRPC's), so
each worker is a copy of a small single-threaded process; they import the engine while the
reader waits for TensorBoard's data server. Only "fork" is used (Linux): elsewhere, or with one
core, there is no pool and the caller diagnoses in-process.

While the reader is still reading, `prefetch` hands each batch's series to the workers, a slice
of runs per task, and the worker groups them (this process, busy reading, does not). The
engine's `diagnose` later takes a worker's entry for a group whose runs were all in that one
task: every series of a run belongs to the run's group, so that task built the same group. A
group whose runs a slice boundary split is simply diagnosed again, whole, here.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import sys
import threading
from concurrent.futures import Future, InvalidStateError, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Dict, List, Optional, Sequence, Tuple

# Below this many groups per process, pickling the series to a worker costs about what it saves.
MIN_GROUPS_PER_PROCESS = 150
# Groups (or, while reading, runs) per task sent to a worker: small enough that the last task
# does not leave one process working alone for long, large enough that per-task overhead stays
# negligible.
CHUNK_GROUPS = 100
MAX_WORKERS = 4
# How often a wait on a worker's task checks that the pool is still whole (seconds).
SETTLE_POLL_SECONDS = 1.0

logger = logging.getLogger(__name__)


def available_cores() -> int:
    """Cores this process may run on (a container's CPU set, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers() -> int:
    """Worker processes besides the caller's own: one fewer than the available cores."""
    return max(0, min(MAX_WORKERS, available_cores() - 1))


def _warm_up() -> None:
    """Import the engine in the worker while the parent is still reading."""
    import tb_lossdoctor.engine  # noqa: F401


# What a task returns: {run group name: (report entry, problems it added)}.
Results = Dict[str, Tuple[dict, List[dict]]]


def _diagnose_chunk(groups, settings) -> Results:
    """A worker's task: run groups this process grouped."""
    return _diagnose_all(groups, settings)


def _group_and_diagnose(series, settings) -> Results:
    """A worker's task while reading: the series of a slice of runs, grouped here."""
    from tb_lossdoctor.engine import split_groups

    return _diagnose_all(split_groups(series)[0], settings)


def _diagnose_all(groups, settings) -> Results:
    from tb_lossdoctor.engine import diagnose_run_groups

    return {group.name: result for group, result in zip(groups, diagnose_run_groups(groups, settings))}


def _runs_of(group) -> set:
    """The runs a group's kept series come from (the runs whose task can have built it)."""
    runs = {c.series.run for c in group.curves} | {s.run for s in group.ignored}
    if group.learning_rate is not None:
        runs.add(group.learning_rate.run)
    return runs


class Task:
    """Items sent to a worker as one task, and how to get their results here instead."""

    __slots__ = ("items", "future", "_here", "executor")

    def __init__(self, items: list, future: Future, here: Callable[[], list], executor=None):
        self.items, self.future, self._here = items, future, here
        self.executor = executor  # the one that ran it (plugin_pool drops it when it fails)

    @property
    def local(self) -> bool:
        return getattr(self.future, "local", False)

    def take_back(self) -> bool:
        """Run the task here if no worker has started it; False when one has."""
        if not self.future.cancel():
            return False
        _quiet_the_cancelled_future_race()
        self.future = done_future(self._here())
        return True

    def results(self, on_failure: Optional[Callable[[BaseException], None]] = None):
        """The task's results; when its worker failed (died, out of memory, killed), computed
        here (the executor reports a dead worker as BrokenProcessPool)."""
        try:
            return self._settled_result()
        except Exception as exc:
            if on_failure is not None:
                on_failure(exc)
            else:
                logger.warning("a worker process failed; diagnosing its run groups in-process", exc_info=True)
            self.future = done_future(self._here())
            return self.future.result()

    def _settled_result(self):
        """The future's result, or BrokenProcessPool when its executor broke without settling
        it: Python 3.11's executor fails every pending task when a worker dies, but stops at a
        task that was cancelled meanwhile (`take_back`), leaving the rest unsettled forever."""
        while True:
            try:
                return self.future.result(timeout=SETTLE_POLL_SECONDS)
            except FutureTimeout:
                if getattr(self.executor, "_broken", False) and not self.future.done():
                    raise BrokenProcessPool("the worker pool broke before this task was settled") from None


def _quiet_the_cancelled_future_race() -> None:
    """Once a task was taken back (cancelled), a worker that dies makes Python 3.11's executor
    thread set an exception on that cancelled future: it raises InvalidStateError and ends, and
    `Task._settled_result` copes with what it leaves unsettled. Its traceback would reach the
    user's terminal as if something crashed: log it at debug level instead. Every other thread
    exception goes to the hook that was there."""
    current = threading.excepthook
    if getattr(current, "_lossdoctor", False):
        return

    def hook(args) -> None:
        if (args.exc_type is not None and issubclass(args.exc_type, InvalidStateError)
                and type(args.thread).__name__ == "_ExecutorManagerThread"):
            logger.debug("executor thread ended on a cancelled task: %s", args.exc_value)
            return
        current(args)

    hook._lossdoctor = True  # type: ignore[attr-defined]
    threading.excepthook = hook


class GroupPool:
    """Worker processes that diagnose run groups; use as a context manager."""

    def __init__(self, workers: Optional[int] = None):
        workers = default_workers() if workers is None else max(0, int(workers))
        self._pool: Optional[ProcessPoolExecutor] = None
        if workers and sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
            self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                             initializer=_warm_up)
            self._pool.submit(_warm_up)  # forks the workers now, not at the first real task
        self.workers = workers if self._pool is not None else 0
        self.sent = 0  # run groups diagnosed by the workers (for logs and tests)
        self._tasks: List[Task] = []
        self._task_of_run: Dict[str, Task] = {}
        self._settings = None

    def __enter__(self) -> "GroupPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    # -- while reading ----------------------------------------------------------------------

    def prefetch(self, series: Sequence, settings=None) -> None:
        """Start diagnosing the run groups of one read batch (a callback for the reader)."""
        if self._pool is None:
            return
        from tb_lossdoctor.settings import Settings

        settings = settings or Settings()
        if self._settings is not None and settings != self._settings:
            return
        self._settings = settings
        by_run: Dict[str, list] = {}
        for s in sorted(series, key=lambda s: (s.run, s.tag)):  # as the engine will see them
            by_run.setdefault(s.run, []).append(s)
        runs = list(by_run)
        for start in range(0, len(runs), CHUNK_GROUPS):
            some = runs[start : start + CHUNK_GROUPS]
            self._submit(_group_and_diagnose, _group_and_diagnose,
                         [s for run in some for s in by_run[run]], settings, some)

    def _submit(self, work, here, items: list, settings, runs) -> None:
        """`work(items, settings)` in a worker, or `here(items, settings)` when taken back."""
        task = Task(items, self._pool.submit(work, items, settings),
                    functools.partial(here, items, settings), self._pool)
        self._tasks.append(task)
        for run in runs:
            self._task_of_run[run] = task

    def _task_of(self, group) -> Optional[Task]:
        """The one task that had every run of `group`, or None."""
        tasks = {self._task_of_run.get(run) for run in _runs_of(group)}
        return tasks.pop() if len(tasks) == 1 else None

    # -- the engine's call ------------------------------------------------------------------

    def diagnose_groups(self, groups: Sequence, settings, problems: List[dict]) -> List[dict]:
        """Report entries of `groups`, in their order; failures are appended to `problems` as
        the in-process engine does."""
        if self._pool is None:
            return _diagnose_here(groups, settings, problems)
        if self._settings is not None and settings != self._settings:  # prefetched for others
            self._tasks, self._task_of_run = [], {}
            return _diagnose_here(groups, settings, problems)
        if not self._tasks and len(groups) >= MIN_GROUPS_PER_PROCESS * 2:
            # Nothing prefetched (another reader): the workers take the first share.
            shared = len(groups) * self.workers // (self.workers + 1)
            for start in range(0, shared, CHUNK_GROUPS):
                some = list(groups[start : min(start + CHUNK_GROUPS, shared)])
                self._submit(_diagnose_chunk, _diagnose_all, some, settings, set().union(*map(_runs_of, some)))
        # First what no worker has: this process's own share (and groups a slice split).
        found = [self._task_of(group) for group in groups]
        own = _diagnose_all([g for g, task in zip(groups, found) if task is None], settings)
        # Then tasks no worker has started yet are taken back, from the last one, so this
        # process and the workers stay busy until the end.
        for task in reversed(self._tasks):
            task.take_back()
        results = [own[g.name] if task is None else task.results()[g.name] for g, task in zip(groups, found)]
        self.sent += sum(1 for task in found if task is not None and not task.local)
        self._tasks, self._task_of_run = [], {}
        for _, added in results:
            problems.extend(added)
        return [entry for entry, _ in results]


def _diagnose_here(groups, settings, problems: List[dict]) -> List[dict]:
    """The groups' report entries, diagnosed in this process."""
    from tb_lossdoctor.engine import run_group_entries

    return run_group_entries(groups, settings, problems)


def done_future(value) -> Future:
    """A future already holding `value` (work done in this process)."""
    future: Future = Future()
    future.local = True  # type: ignore[attr-defined]
    future.set_result(value)
    return future
