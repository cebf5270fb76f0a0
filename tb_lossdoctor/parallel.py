"""Diagnose run groups on several cores: the CLI on logdirs of thousands of runs.

Each run group is diagnosed on its own (the engine's `diagnose_run_group`), so groups can be
split between processes and their report entries put back in order. Worker processes are forked
when the pool is created, which the CLI does before its reader starts any thread (gRPC's), so
each worker is a copy of a small single-threaded process; they import the engine while the
reader waits for TensorBoard's data server. Only "fork" is used (Linux): elsewhere, or with one
core, there is no pool and the caller diagnoses in-process.

While the reader is still reading, `prefetch` hands each batch's run groups to the workers; the
engine's `diagnose` later takes a prefetched result only for a group made of exactly the same
series (a group split across two read batches is simply diagnosed again, whole).
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Dict, List, Optional, Sequence, Tuple

# Below this many groups per process, pickling the series to a worker costs about what it saves.
MIN_GROUPS_PER_PROCESS = 150
# Groups per task sent to a worker: small enough that the last task does not leave one process
# working alone for long, large enough that per-task overhead stays negligible.
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


def _diagnose_chunk(groups, settings) -> List[Tuple[dict, List[dict]]]:
    """A worker's task."""
    return _diagnose_all(groups, settings)


def _diagnose_all(groups, settings) -> List[Tuple[dict, List[dict]]]:
    """(report entry, problems it added) of each group."""
    from tb_lossdoctor.engine import diagnose_run_groups

    return diagnose_run_groups(groups, settings)


def _signature(group) -> tuple:
    """A group's name and the identity of every series in it (valid in this process only)."""
    members = [c.series for c in group.curves] + list(group.ignored)
    if group.learning_rate is not None:
        members.append(group.learning_rate)
    return (group.name, tuple(sorted(id(s) for s in members)))


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
        self.future = done_future(self._here())
        return True

    def results(self, on_failure: Optional[Callable[[BaseException], None]] = None) -> list:
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

    def _settled_result(self) -> list:
        """The future's result, or BrokenProcessPool when its executor broke without settling
        it: Python 3.11's executor fails every pending task when a worker dies, but stops at a
        task that was cancelled meanwhile (`take_back`), leaving the rest unsettled forever."""
        while True:
            try:
                return self.future.result(timeout=SETTLE_POLL_SECONDS)
            except FutureTimeout:
                if getattr(self.executor, "_broken", False) and not self.future.done():
                    raise BrokenProcessPool("the worker pool broke before this task was settled") from None


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
        self._prefetched: Dict[tuple, Tuple[Task, int]] = {}  # signature -> (task, index in it)
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
        from tb_lossdoctor.grouping import group_series
        from tb_lossdoctor.settings import Settings

        settings = settings or Settings()
        if self._settings is not None and settings != self._settings:
            return
        self._settings = settings
        ordered = sorted(series, key=lambda s: (s.run, s.tag))  # as the engine will see them
        groups = [g for g in group_series(ordered) if g.pairs]
        for start in range(0, len(groups), CHUNK_GROUPS):
            self._submit(groups[start : start + CHUNK_GROUPS], settings)

    def _submit(self, groups: list, settings) -> None:
        task = Task(groups, self._pool.submit(_diagnose_chunk, groups, settings),
                     functools.partial(_diagnose_all, groups, settings), self._pool)
        self._tasks.append(task)
        for index, group in enumerate(groups):
            self._prefetched[_signature(group)] = (task, index)

    # -- the engine's call ------------------------------------------------------------------

    def diagnose_groups(self, groups: Sequence, settings, problems: List[dict]) -> List[dict]:
        """Report entries of `groups`, in their order; failures are appended to `problems` as
        the in-process engine does."""
        if self._pool is None:
            return _diagnose_here(groups, settings, problems)
        if self._settings is not None and settings != self._settings:  # prefetched for others
            self._tasks, self._prefetched = [], {}
            return _diagnose_here(groups, settings, problems)
        if not self._tasks and len(groups) >= MIN_GROUPS_PER_PROCESS * 2:
            # Nothing prefetched (another reader): the workers take the first share.
            shared = len(groups) * self.workers // (self.workers + 1)
            for start in range(0, shared, CHUNK_GROUPS):
                self._submit(list(groups[start : min(start + CHUNK_GROUPS, shared)]), settings)
        # First what no worker has: this process's own share (and groups a batch split).
        found = [self._prefetched.get(_signature(group)) for group in groups]
        results: List[Optional[tuple]] = [None] * len(groups)
        own = [i for i, where in enumerate(found) if where is None]
        for i, result in zip(own, _diagnose_all([groups[i] for i in own], settings)):
            results[i] = result
        # Then tasks no worker has started yet are taken back, from the last one, so this
        # process and the workers stay busy until the end.
        for task in reversed(self._tasks):
            task.take_back()
        for i, where in enumerate(found):
            if where is not None:
                task, index = where
                results[i] = task.results()[index]
        self.sent += sum(len(t.items) for t in self._tasks if not t.local)
        self._tasks, self._prefetched = [], {}
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
