"""Worker processes for the plugin's report builds, inside TensorBoard's process.

TensorBoard serves requests from threads (and talks gRPC to its data server), so its process
cannot be forked safely, as the CLI's `parallel.GroupPool` does. The workers here are started
with "forkserver" (a clean server process, itself started with fork+exec, that preloads the
engine and forks the workers) or, where there is none, "spawn". The pool is created by the
first report build with enough run groups, starts in the background (that build goes on in its
own thread meanwhile and hands groups to the workers once they are up), and is reused by later
builds; workers unused for `IDLE_SECONDS` are stopped, with the fork server, until the next
large build. Workers ignore Ctrl-C, exit when TensorBoard's process is gone (even when it was
killed), and are stopped when it exits normally.

`spread` runs a function over chunks of items, on the workers and in the calling thread at the
same time; a worker that fails costs nothing but time: its chunks are run in the calling thread.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import os
import signal
import sys
import threading
import weakref
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator, List, Optional

from tb_lossdoctor.parallel import Task, default_workers

logger = logging.getLogger(__name__)

# Worker processes of the plugin: unset, one fewer than the available cores (the build's own
# thread diagnoses too), when TensorBoard was started as its own program; 0 turns the pool off.
WORKERS_ENV = "LOSSDOCTOR_WORKERS"
# A report build with at least this many run groups to diagnose starts the pool; once it is up,
# builds of POOL_MIN_GROUPS or more use it. Measured on 2 cores (benchmarks/README.md): a first
# build of 1,000 groups takes the same time with the pool starting as without (2,000: 0.9x);
# with the pool up, 500 groups take 1.0x, 1,000 0.8x, 2,000 0.75x, 10,000 0.7x.
POOL_START_GROUPS = 1000
POOL_MIN_GROUPS = 500
# Run groups per task (~1 ms each): tens of milliseconds of work against ~1 ms of pickling.
CHUNK_GROUPS = 40
# Tasks queued per worker besides the one it runs; beyond, the calling thread runs the chunk.
AHEAD_PER_WORKER = 2
# A pool whose workers failed this many times (killed, out of memory) is not started again.
MAX_FAILURES = 3
# Workers (and the fork server) are stopped once no build has used them for this long: they hold
# ~100 MB that an idle TensorBoard does not need (the tab's polls and a run's new points make
# small builds, diagnosed in-process); the next large build starts them again in the background.
IDLE_SECONDS = 120.0
# What the workers import before their first task (also preloaded by the fork server).
WORKER_MODULES = ("tb_lossdoctor.engine", "tb_lossdoctor.report_cache")

_live: "weakref.WeakSet[WorkerPool]" = weakref.WeakSet()
_exit_hook = threading.Lock()
_exit_hooked = False


def plugin_workers() -> int:
    """How many worker processes the plugin may use: LOSSDOCTOR_WORKERS when set (0: none);
    else one fewer than the available cores (at most `parallel.MAX_WORKERS`), but none when
    this process is some other program's: spawned workers import the program's main module."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if raw:
        try:
            return max(0, int(raw))
        except ValueError:
            logger.warning("lossdoctor: %s=%r is not a number; diagnosing in-process", WORKERS_ENV, raw)
            return 0
    if not _main_is_tensorboard():
        return 0
    return default_workers()


def _main_is_tensorboard() -> bool:
    """Whether a spawned worker may import this process's main module (as multiprocessing does):
    TensorBoard's own (`tensorboard`, `python -m tensorboard.main`), a package's `__main__`
    (never imported again), or none (an interactive session); an arbitrary script may start
    TensorBoard at import time."""
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if name is not None:
        return name == "tensorboard.main" or name.endswith(".__main__")
    if getattr(main, "__file__", None) is None:
        return True
    tb_main = sys.modules.get("tensorboard.main")
    return tb_main is not None and getattr(main, "run_main", None) is getattr(tb_main, "run_main", object())


def _start_method() -> str:
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def _preload() -> List[str]:
    """Modules the fork server imports once, so each worker it forks starts with them: ours,
    and TensorBoard's main module, which each worker runs again (as multiprocessing does)."""
    modules = ["tensorboard.main"] if "tensorboard.main" in sys.modules else []
    name = getattr(getattr(sys.modules.get("__main__"), "__spec__", None), "name", None)
    if name and not name.endswith(".__main__") and name not in modules:
        modules.append(name)
    return modules + list(WORKER_MODULES)


def _worker_init() -> None:
    """In each worker: ignore Ctrl-C (TensorBoard handles it, then stops the pool), exit when
    TensorBoard's process is gone, import the engine."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), name="lossdoctor-parent-watch", daemon=True).start()
    for module in WORKER_MODULES:
        __import__(module)


def _exit_with(parent) -> None:
    parent.join()  # returns when the parent's end of the pipe closes: it exited or was killed
    os._exit(0)


def _ready() -> int:
    return os.getpid()


def _stop_all() -> None:
    """At exit, before concurrent.futures joins its threads: cancel what no worker started."""
    for pool in list(_live):
        pool.close(wait=False)


def _hook_exit() -> None:
    global _exit_hooked
    with _exit_hook:
        if _exit_hooked:
            return
        _exit_hooked = True
        try:
            # Run before concurrent.futures' own hook (registered at its import, run after ours),
            # which waits for every task still queued.
            threading._register_atexit(_stop_all)  # type: ignore[attr-defined]
        except (AttributeError, RuntimeError):
            import atexit

            atexit.register(_stop_all)


class WorkerPool:
    """Worker processes started in the background on first use, kept for later builds, and
    stopped after `IDLE_SECONDS` without one (the next use starts them again)."""

    def __init__(self, workers: int, method: Optional[str] = None):
        self.workers = max(0, int(workers))
        self.method = method or _start_method()
        self.failures = 0
        self.sent = 0  # items whose results came back from a worker (for logs and tests)
        self._lock = threading.Lock()
        self._executor: Optional[ProcessPoolExecutor] = None
        self._starting = False
        self._closed = False
        self.pids: List[int] = []  # the workers' process ids (for tests)
        self.idle_stops = 0  # times the workers were stopped for being idle (for logs and tests)
        self._users = 0  # `spread` calls running on this pool
        self._uses = 0  # `spread` calls ended so far: an idle timer acts only if none ended since

    def executor(self) -> Optional[ProcessPoolExecutor]:
        """The executor once its workers are up; None while they start (the first call starts
        them, in a background thread), when the pool is off, closed, or failed too often."""
        with self._lock:
            if self._executor is not None or self._starting or self._closed or not self.workers:
                return self._executor
            if self.failures >= MAX_FAILURES:
                return None
            self._starting = True
        _hook_exit()
        _live.add(self)
        threading.Thread(target=self._start, name="lossdoctor-pool-start", daemon=True).start()
        return None

    def _start(self) -> None:
        executor = None
        try:
            context = multiprocessing.get_context(self.method)
            if self.method == "forkserver":
                context.set_forkserver_preload(_preload())
            executor = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_worker_init)
            pids = [f.result(timeout=300) for f in [executor.submit(_ready) for _ in range(self.workers)]]
            logger.info("lossdoctor: %d worker processes (%s) diagnose large reports", self.workers, self.method)
        except Exception:
            logger.warning("lossdoctor: worker processes could not start; diagnosing in-process", exc_info=True)
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)
            executor, pids = None, []
        with self._lock:
            self._starting = False
            if executor is None:
                self.failures += 1
            elif self._closed:
                executor.shutdown(wait=False, cancel_futures=True)
            else:
                self._executor, self.pids = executor, pids

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """Around one build's use of the pool; the idle timer starts when the last use ends."""
        with self._lock:
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                self._uses += 1
                uses = self._uses
            self._stop_when_idle(uses)

    def _stop_when_idle(self, uses: int) -> None:
        timer = threading.Timer(IDLE_SECONDS, self._stop_if_idle, args=(uses,))
        timer.daemon = True
        timer.name = "lossdoctor-pool-idle"
        timer.start()

    def _stop_if_idle(self, uses: int) -> None:
        """Stop the workers if no build used them since use number `uses` ended."""
        with self._lock:
            if self._users or self._uses != uses or self._closed:
                return
            again = self._starting  # still starting (a slow machine): look again later
        if again:
            self._stop_when_idle(uses)
        elif self.stop_workers():
            self.idle_stops += 1
            logger.info("lossdoctor: worker processes stopped after %g s unused", IDLE_SECONDS)

    def stop_workers(self) -> bool:
        """Stop the workers (and the fork server, if no other pool needs it) unless a build is
        using them or they are starting; the next use starts them again. True if they were up."""
        with self._lock:
            if self._users or self._starting or self._executor is None:
                return False
            executor, self._executor, self.pids = self._executor, None, []
        executor.shutdown(wait=True)
        if self.method == "forkserver":
            _stop_fork_server()
        return True

    def failed(self, executor: ProcessPoolExecutor, exc: BaseException) -> None:
        """A task of `executor` failed: drop it (a later build starts new workers)."""
        with self._lock:
            if self._executor is not executor:
                return  # already dropped
            self._executor = None
            self.failures += 1
        logger.warning("lossdoctor: a worker process failed (%r); its run groups are diagnosed in-process", exc)
        executor.shutdown(wait=False)  # no cancelling: the executor is settling every task

    def close(self, wait: bool = True) -> None:
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=True)


def _stop_fork_server() -> None:
    """Stop multiprocessing's fork server (it holds the preloaded engine and TensorBoard's main
    module) when no pool of this process has workers up or starting; the next pool to start
    starts it again. Its stop method is private (Python 3.8-3.13): without it, it stays up."""
    from multiprocessing import forkserver

    with _exit_hook:
        if any(p._executor is not None or p._starting for p in list(_live)):  # noqa: SLF001
            return
        stop = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)
        if stop is not None:
            try:
                stop()
            except OSError:
                logger.debug("lossdoctor: stopping the fork server failed", exc_info=True)


def spread(pool: Optional[WorkerPool], chunks: Iterable[list], fn: Callable, args: tuple,
           on_done: Callable[[list, list], None]) -> None:
    """`on_done(chunk, fn(chunk, *args))` in this thread for every chunk, `fn` running on the
    pool's workers or here (it must give the same results wherever it runs, and be importable
    by the workers: a module-level function). `chunks` is consumed as it goes (a generator that
    reads as it yields): each worker holds at most `1 + AHEAD_PER_WORKER` chunks, and this
    thread runs the next chunk itself when they are all busy, so memory holds a few chunks and
    every core works. Without a pool, or while its workers start, chunks run here.

    Tasks are never cancelled (Python 3.11's executor fails on a cancelled task when a worker
    dies, and then never settles the other tasks): what a worker holds, it is waited for."""
    with pool.in_use() if pool is not None else contextlib.nullcontext():
        _spread(pool, chunks, fn, args, on_done)


def _spread(pool: Optional[WorkerPool], chunks: Iterable[list], fn: Callable, args: tuple, on_done) -> None:
    tasks: List[Task] = []
    for chunk in chunks:
        executor = pool.executor() if pool is not None else None
        tasks = _collect(tasks, pool, on_done, block=False)
        if executor is not None and len(tasks) < pool.workers * (1 + AHEAD_PER_WORKER):
            try:
                tasks.append(_submit(executor, chunk, fn, args))
                continue
            except Exception as exc:  # broken or shut down since: run here
                pool.failed(executor, exc)
        on_done(chunk, fn(chunk, *args))
    _collect(tasks, pool, on_done, block=True)


def _submit(executor, chunk: list, fn, args) -> Task:
    return Task(chunk, executor.submit(fn, chunk, *args), functools.partial(fn, chunk, *args), executor)


def _collect(tasks: List[Task], pool: Optional[WorkerPool], on_done, block: bool) -> List[Task]:
    """Hand the finished tasks' results to `on_done` (all of them when `block`); the others."""
    left = []
    for task in tasks:
        if not block and not task.future.done():
            left.append(task)
            continue
        failure = functools.partial(pool.failed, task.executor) if pool is not None else None
        results = task.results(failure)
        if pool is not None and not task.local:
            pool.sent += len(task.items)
        on_done(task.items, results)
    return left
