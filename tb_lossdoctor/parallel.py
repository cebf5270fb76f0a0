"""Diagnose run groups on several cores: the CLI on logdirs of thousands of runs.

Each run group is diagnosed on its own (the engine's `diagnose_run_group`), so groups can be
split between processes and their report entries put back in order. Worker processes are forked
when the pool is created, which the CLI does before its reader starts any thread (gRPC's), so
each worker is a copy of a small single-threaded process; they import the engine while the
reader waits for TensorBoard's data server. Only "fork" is used (Linux): elsewhere, or with one
core, there is no pool and the caller diagnoses in-process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import List, Optional, Sequence, Tuple

# Below this many groups per process, pickling the series to a worker costs about what it saves.
MIN_GROUPS_PER_PROCESS = 150
# Groups per task sent to a worker: small enough that the last task does not leave one process
# working alone for long, large enough that per-task overhead stays negligible.
CHUNK_GROUPS = 250
MAX_WORKERS = 4

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


def _diagnose_chunk(groups, settings) -> Tuple[List[dict], List[dict]]:
    from tb_lossdoctor.engine import diagnose_run_group

    problems: List[dict] = []
    entries = [diagnose_run_group(group, settings, problems) for group in groups]
    return entries, problems


class GroupPool:
    """Worker processes that diagnose run groups; use as a context manager."""

    def __init__(self, workers: Optional[int] = None):
        workers = default_workers() if workers is None else max(0, int(workers))
        self._pool = None
        if workers and sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
            self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                             initializer=_warm_up)
            self._pool.submit(_warm_up)  # forks the workers now, not at the first real task
        self.workers = workers if self._pool is not None else 0
        self.sent = 0  # run groups diagnosed by the workers so far (for logs and tests)

    def __enter__(self) -> "GroupPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def diagnose_groups(self, groups: Sequence, settings, problems: List[dict]) -> List[dict]:
        """Report entries of `groups`, in their order; failures are appended to `problems` as
        the in-process engine does. Falls back to in-process work for a few groups."""
        from tb_lossdoctor.engine import diagnose_run_group

        processes = self.workers + 1
        if self._pool is None or len(groups) < MIN_GROUPS_PER_PROCESS * 2:
            return [diagnose_run_group(g, settings, problems) for g in groups]
        # The workers take the first share, in chunks; this process diagnoses the rest meanwhile.
        shared = len(groups) * self.workers // processes
        chunks = [groups[i : min(i + CHUNK_GROUPS, shared)] for i in range(0, shared, CHUNK_GROUPS)]
        tasks = [self._pool.submit(_diagnose_chunk, chunk, settings) for chunk in chunks]
        self.sent += shared
        own_problems: List[dict] = []
        own = [diagnose_run_group(g, settings, own_problems) for g in groups[shared:]]
        entries: List[dict] = []
        for chunk, task in zip(chunks, tasks):
            try:
                chunk_entries, chunk_problems = task.result()
            except Exception:  # a worker died (out of memory, killed): do its share here
                # (the executor reports a dead worker as BrokenProcessPool, it never hangs)
                logger.warning("a worker process failed; diagnosing its run groups in-process", exc_info=True)
                chunk_problems = []
                chunk_entries = [diagnose_run_group(g, settings, chunk_problems) for g in chunk]
            entries.extend(chunk_entries)
            problems.extend(chunk_problems)
        problems.extend(own_problems)
        return entries + own
