"""Read a logdir through TensorBoard's Rust data server (`tensorboard_data_server`).

The server is TensorBoard's own fast reader: it understands every event-file flavour TensorBoard
does (TF2 tensors, TF1/PyTorch `simple_value`, several files per run, nested runs) and, where
it was built with support, `gs://` logdirs. We start it, read every scalar once through
TensorBoard's gRPC `DataProvider`, and shut it down.

How we know the initial load is complete
-----------------------------------------
The server writes its port file *before* it starts loading (the load runs on a background
"Reloader" thread), so a successful `GetExperiment` call says nothing about the data. Polling the
run/tag/point counts until they stop changing is a guess (a slow `gs://` listing or one huge file
looks exactly like "done"). Instead we use two documented server flags:

- `--reload once`: the Reloader thread performs exactly one load cycle and then stops, so the data
  never changes after it;
- `--verbose` (info logging): the Reloader logs `Finished load cycle (...)` right after that cycle
  returns (rustboard `cli.rs`: `info!("Finished load cycle ({:?})", ...)`, stable since 0.1).

The server's stderr goes to a private log file that we watch for that line; `RUST_LOG` is pinned to
`info` for the child so a user's own `RUST_LOG` cannot hide it. If the line does not appear within
`timeout` seconds, the loader thread panics, or the server exits, we raise `DataServerError` and the caller falls back to the
Python reader.

Why we spawn the binary ourselves instead of `SubprocessServerDataIngester`
-------------------------------------------------------------------------------
That ingester runs the same binary with the same flags, but it keeps neither the process handle
nor its stderr: its log lines (warnings about truncated files, ...) would go to *our* stderr, we
could not see the "Finished load cycle" line, and we could only stop the server by closing a
private stdin handle. So we launch the binary found by TensorBoard's own
`server_ingester.get_server_binary()` with the ingester's flags, and connect with TensorBoard's
`ExistingServerDataIngester` (its `GrpcDataProvider`). `--die-after-stdin` makes the server exit
if we crash; the context manager closes stdin, then terminates and waits for the process.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from typing import TYPE_CHECKING, List, Optional, Tuple

if TYPE_CHECKING:  # numpy is imported after the data server has started loading
    from tb_lossdoctor.series import Series

FINISHED_RE = re.compile(r"Finished load cycle")
# A failing load (e.g. gs:// without credentials) panics the Reloader thread while the gRPC
# server keeps running: without this check we would wait for the whole timeout.
PANIC_RE = re.compile(r"thread '[^']*' panicked at ")
# Rust < 1.73 writes `panicked at 'MESSAGE', src/file.rs:1:2`; later ones write
# `panicked at src/file.rs:1:2:` and the message on the next line(s).
_PANIC_OLD_RE = re.compile(r"'(.*?)', [^\s']+:\d+:\d+\s*$", re.S | re.M)
_PANIC_NEW_RE = re.compile(r"[^\s']+:\d+:\d+:\n(.*)", re.S)
_PANIC_END_RE = re.compile(r"\n(?:note: |stack backtrace:)")
MAX_REASON = 400
DEFAULT_TIMEOUT = 300.0


class DataServerError(RuntimeError):
    """The data server is unavailable, failed to start, or failed while loading.

    `unavailable`: the server could not be run at all (no binary, cannot start), as opposed to
    a server that ran and failed on this logdir."""

    def __init__(self, message: str, *, unavailable: bool = False):
        super().__init__(message)
        self.unavailable = unavailable


def server_binary_path() -> str:
    """Path of TensorBoard's data server binary, or raise `DataServerError`.

    Found as TensorBoard's `server_ingester.get_server_binary` finds it; in the common case (no
    TENSORBOARD_DATA_SERVER_BINARY override, the `tensorboard_data_server` package installed) it
    asks that package directly, without importing TensorBoard's gRPC client first: the server
    starts loading a fifth of a second sooner, and the client is imported while it loads."""
    if not os.environ.get("TENSORBOARD_DATA_SERVER_BINARY"):
        try:
            import tensorboard_data_server

            path = tensorboard_data_server.server_binary()
        except Exception:  # not installed, or no binary for this platform: ask TensorBoard
            path = None
        if path and os.path.isfile(path):
            return path
    try:
        from tensorboard.data import server_ingester

        binary = server_ingester.get_server_binary()
    except Exception as exc:  # NoDataServerError, ImportError, ...
        raise DataServerError(f"TensorBoard data server not available: {exc}", unavailable=True) from exc
    if not binary.path or not os.path.isfile(binary.path):
        raise DataServerError("TensorBoard data server binary not found", unavailable=True)
    return binary.path


class DataServer:
    """Context manager: a data server that has loaded `logdir` once, with all scalars kept.

    `provider` is TensorBoard's `GrpcDataProvider` for it; read with `experiment_id=""`.
    """

    def __init__(self, logdir: str, *, timeout: float = DEFAULT_TIMEOUT, reload_seconds: Optional[float] = None):
        self.logdir = logdir
        self.timeout = timeout
        # None: one load cycle, then frozen (a one-shot read). A number: keep reloading, with this
        # many seconds between cycles (following a live logdir).
        self.reload_seconds = reload_seconds
        self.provider = None
        self.load_seconds: Optional[float] = None
        self._popen: Optional[subprocess.Popen] = None
        self._tmpdir: Optional[str] = None
        self._log = None

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> "DataServer":
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        popen, self._popen = self._popen, None
        if popen is not None:
            try:
                if popen.stdin:
                    popen.stdin.close()  # --die-after-stdin: the polite way to stop it
            except OSError:
                pass
            try:
                popen.wait(timeout=2)
            except subprocess.TimeoutExpired:
                popen.terminate()
                try:
                    popen.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    popen.kill()
                    popen.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    # -- internals -------------------------------------------------------------------------
    def _start(self) -> None:
        path = server_binary_path()
        self._tmpdir = tempfile.mkdtemp(prefix="lossdoctor_data_server_")
        port_file = os.path.join(self._tmpdir, "port")
        error_file = os.path.join(self._tmpdir, "startup_error")
        log_file = os.path.join(self._tmpdir, "server.log")
        self._log = open(log_file, "wb")
        args = [
            path,
            "--logdir=%s" % os.path.expanduser(self.logdir),
            # One load cycle then frozen, or keep reloading for a live logdir.
            "--reload=%s" % ("once" if self.reload_seconds is None else max(1, round(self.reload_seconds))),
            "--samples-per-plugin=scalars=all",  # keep every scalar point, no reservoir sampling
            "--port=0",
            "--port-file=%s" % port_file,
            "--error-file=%s" % error_file,
            "--die-after-stdin",  # exits when we exit, even if we crash
            "--verbose",  # info logs: "Finished load cycle"
        ]
        env = dict(os.environ, RUST_LOG="info")
        start = time.monotonic()
        try:
            self._popen = subprocess.Popen(
                args,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=self._log,
                env=env,
            )
        except OSError as exc:
            raise DataServerError(f"cannot start the data server: {exc}", unavailable=True) from exc

        # TensorBoard's gRPC client takes a fifth of a second to import, and the reader's numpy
        # another tenth: import them while the server loads (in its own process), not after.
        from tensorboard.data import server_ingester
        from tensorboard.util import grpc_util

        from tb_lossdoctor.readers import provider  # noqa: F401

        deadline = start + self.timeout
        port = None
        while True:
            code = self._popen.poll()
            if code is not None:
                raise DataServerError(self._exit_message(code, error_file, log_file))
            if port is None:
                text = _read(port_file)
                if text.endswith("\n"):
                    port = int(text)
            log = _read(log_file)
            if port is not None and FINISHED_RE.search(log):
                break
            panic = PANIC_RE.search(log)
            if panic:
                raise DataServerError(
                    f"the data server failed while loading: {self._panic_message(log_file, panic.end())}"
                )
            if time.monotonic() > deadline:
                raise DataServerError(
                    f"the data server did not finish loading {self.logdir} in {self.timeout:g} s"
                )
            time.sleep(0.01)
        self.load_seconds = time.monotonic() - start
        ingester = server_ingester.ExistingServerDataIngester(
            "localhost:%d" % port, channel_creds_type=grpc_util.ChannelCredsType.LOCAL
        )
        self.provider = ingester.data_provider

    def _exit_message(self, code: int, error_file: str, log_file: str) -> str:
        msg = _read(error_file).strip()
        if not msg:
            lines = [l for l in _read(log_file).splitlines() if "ERROR" in l or "error" in l]
            msg = lines[-1].strip() if lines else ""
        return f"the data server exited with status {code}" + (f": {msg}" if msg else "")

    def _panic_message(self, log_file: str, start: int) -> str:
        """The panic's message, once the server has finished writing it (a moment at most)."""
        deadline = time.monotonic() + 1.0
        while True:
            tail = _read(log_file)[start:]
            old = _PANIC_OLD_RE.match(tail)
            if old:
                message = old.group(1)
                break
            new = _PANIC_NEW_RE.match(tail)
            if (new and _PANIC_END_RE.search(new.group(1))) or time.monotonic() > deadline:
                message = new.group(1) if new else tail
                break
            time.sleep(0.02)
        message = " ".join(_PANIC_END_RE.split(message)[0].split())
        return message[:MAX_REASON] + ("..." if len(message) > MAX_REASON else "")

    def log_text(self) -> str:
        return _read(os.path.join(self._tmpdir, "server.log")) if self._tmpdir else ""


def _read(path: str) -> str:
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def read_logdir(
    logdir: str, *, timeout: float = DEFAULT_TIMEOUT, hparams_out: Optional[dict] = None,
    on_batch=None,
) -> Tuple[List[Series], List[dict], List[Tuple[str, str]]]:
    """All scalar series of `logdir` via the data server.

    Returns (series, problems, dropped). `dropped` lists the (run, tag) pairs the server knows
    but returned no points for: data server 0.7 drops scalar tensors whose dtype is not float32
    (float64 scalars, for one); the caller re-reads those runs with the Python reader.
    Raises `DataServerError` when the server cannot be used (the caller falls back).
    `hparams_out`, when given, is filled with the HParams records ({run: {name: value}}).
    `on_batch`: see `provider.read_series`.
    """
    with DataServer(logdir, timeout=timeout) as server:
        import grpc
        from tensorboard import context as tb_context

        from tb_lossdoctor.readers.provider import read_series

        try:
            series, problems = read_series(server.provider, tb_context.RequestContext(), "", on_batch=on_batch)
        except grpc.RpcError as exc:
            raise DataServerError(f"reading from the data server failed: {exc}") from exc
        problems = list(problems) + _log_problems(server.log_text())
        if hparams_out is not None:
            from tb_lossdoctor.readers.hparams_records import read_hparams

            hparams_out.update(read_hparams(server.provider, tb_context.RequestContext(), ""))
    dropped = [(s.run, s.tag) for s in series if len(s) == 0]
    return [s for s in series if len(s)], problems, dropped


_WARN_RE = re.compile(r"^\[[^\]]*\b(WARN|ERROR)\b[^\]]*\]\s*(.*)$")


def _log_problems(log: str) -> List[dict]:
    """Warnings the server logged while loading (e.g. a truncated or corrupt record)."""
    out = []
    for line in log.splitlines():
        m = _WARN_RE.match(line.strip())
        if m:
            out.append({"run": "", "tag": "", "reason": f"data server: {m.group(2)}"})
    return out[:50]
