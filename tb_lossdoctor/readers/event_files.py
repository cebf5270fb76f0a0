"""Read a logdir with TensorBoard's pure-Python event multiplexer (fallback reader).

Used when the Rust data server is unavailable or fails. TensorBoard's `EventMultiplexer` does
all the parsing (TF2 tensor summaries, TF1/PyTorch `simple_value` scalars converted through
`data_compat`, several event files per run, nested run folders, orphaned-data purging after a
restart); `MultiplexerDataProvider` exposes it through the same `DataProvider` interface the
data server has, so both readers share `readers.provider.read_series`.
"""

from __future__ import annotations

import logging
import os
from typing import List, Optional, Tuple

from tb_lossdoctor.readers.logdir import is_url
from tb_lossdoctor.series import Series


class _Collect(logging.Handler):
    """Keeps TensorBoard's warnings (unreadable files, failed reloads) as problems instead of
    letting them reach the user's terminal as log noise.

    TensorBoard's event loader reports a record it could not read (cut mid-record, or corrupt
    bytes) only at DEBUG level ("Truncated record in FILE (reason)") and then stops reading that
    file; those messages are kept too, since the points after them are lost."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: List[str] = []

    def emit(self, record):
        try:
            if record.levelno >= logging.WARNING:
                self.messages.append(record.getMessage())
            elif record.levelno == logging.DEBUG and str(record.msg).startswith("Truncated record"):
                path, detail = (tuple(record.args) + ("", ""))[:2]
                self.messages.append(
                    f"stopped reading {path} at an incomplete or corrupt record ({detail}); "
                    "the points after it, if any, were not read"
                )
        except Exception:  # a broken log record must not break reading
            pass


def read_logdir(
    logdir: str, runs: Optional[List[str]] = None, *, avoid_tensorflow: bool = False,
    hparams_out: Optional[dict] = None,
) -> Tuple[List[Series], List[dict]]:
    """All scalar series under `logdir` and the problems met ({run, tag, reason}).

    `runs` (names as TensorBoard forms them: relative paths, "." for the logdir itself) limits
    reading to those run folders. `avoid_tensorflow` (for command-line processes only: it
    changes process-wide TensorBoard state) reads local logdirs with TensorBoard's TF stub.
    `hparams_out`, when given, is filled with the HParams records ({run: {name: value}}).
    """
    from tensorboard import context as tb_context
    from tensorboard.backend.event_processing import data_provider as tb_data_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer
    from tensorboard.util import tb_logging

    from tb_lossdoctor.readers.provider import read_series

    if avoid_tensorflow:
        _prefer_tensorboard_stub(logdir)
    tb_logger = tb_logging.get_logger()
    handler = _Collect()
    old_propagate, old_level = tb_logger.propagate, tb_logger.level
    tb_logger.addHandler(handler)
    tb_logger.propagate = False
    tb_logger.setLevel(logging.DEBUG)  # see _Collect: truncated records are DEBUG messages
    walk_problems: List[dict] = []
    try:
        multiplexer = plugin_event_multiplexer.EventMultiplexer(
            tensor_size_guidance={"scalars": 0},  # 0 = keep every point
        )
        if runs is None:
            try:
                multiplexer.AddRunsFromDirectory(logdir)
            except UnicodeError:
                # TensorBoard's directory walk stops at the first file name that is not UTF-8,
                # losing every run after it: list the run folders ourselves, skipping those.
                if is_url(logdir):
                    raise
                runs, walk_problems = _local_runs(logdir)
        if runs is not None:
            for run in runs:
                path = logdir if run == "." else os.path.join(logdir, *run.split("/"))
                multiplexer.AddRun(path, name=run)
        multiplexer.Reload()
        provider = tb_data_provider.MultiplexerDataProvider(multiplexer, logdir)
        series, problems = read_series(provider, tb_context.RequestContext(), "")
        if hparams_out is not None:
            from tb_lossdoctor.readers.hparams_records import read_hparams

            hparams_out.update(read_hparams(provider, tb_context.RequestContext(), ""))
    finally:
        tb_logger.removeHandler(handler)
        tb_logger.propagate = old_propagate
        tb_logger.setLevel(old_level)
    problems = walk_problems + list(problems)
    seen = set()
    for msg in handler.messages:
        if msg not in seen:
            seen.add(msg)
            problems.append({"run": "", "tag": "", "reason": f"event reader: {msg}"})
    return series, problems[:100]


def _prefer_tensorboard_stub(logdir: str) -> None:
    """Read local logdirs without importing TensorFlow (saves seconds and its log noise).

    TensorBoard resolves `tensorboard.compat.tf` lazily, to TensorFlow when it is installed, or
    to its bundled stub when the marker module `tensorboard.compat.notf` exists (TensorBoard's own
    `//tensorboard/compat:no_tensorflow` switch). The stub reads local files (and s3/fsspec), so
    for a local logdir we set the marker, unless TensorFlow is already imported in this process
    (then TensorBoard uses it, as it would anyway). Remote logdirs (gs://, ...) keep real TF gfile,
    except s3://, which only the stub reads (see `readers.s3`).
    """
    import sys
    import types

    remote = is_url(logdir) and not logdir.lower().startswith("s3://")
    if remote or "tensorflow" in sys.modules or "tensorboard.compat.notf" in sys.modules:
        return
    # If `tensorboard.compat.tf` was already resolved, it resolved either to TensorFlow (then
    # "tensorflow" is in sys.modules and we returned above) or to the stub: the marker is moot.
    sys.modules["tensorboard.compat.notf"] = types.ModuleType("tensorboard.compat.notf")


def _local_runs(logdir: str) -> Tuple[List[str], List[dict]]:
    """Run names (relative folder paths, "." for the logdir) of every folder holding an event
    file, as TensorBoard names them; folders whose path is not valid UTF-8 are listed as
    problems instead (TensorBoard's Python reader cannot open them). Directory symlinks are
    followed once each (a symlink loop is not walked forever)."""
    top = os.fsencode(logdir)
    runs, problems, seen = [], [], set()
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        try:
            real = os.path.realpath(dirpath)
        except OSError:
            dirnames[:] = []
            continue
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        if not any(b"tfevents" in f for f in filenames):
            continue
        rel = os.path.relpath(dirpath, top)
        try:
            name = "." if rel == b"." else rel.decode("utf-8").replace(os.sep, "/")
            for f in filenames:
                if b"tfevents" in f:
                    f.decode("utf-8")
        except UnicodeDecodeError:
            shown = rel.decode("utf-8", errors="replace").replace(os.sep, "/")
            problems.append({
                "run": shown,
                "tag": "",
                "reason": "a file or folder name here is not valid UTF-8: TensorBoard's Python "
                "reader cannot open it (the data server reader can)",
            })
            continue
        runs.append(name)
    return sorted(runs), problems
