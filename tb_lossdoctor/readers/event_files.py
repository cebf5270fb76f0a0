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

from tb_lossdoctor.series import Series


class _Collect(logging.Handler):
    """Keeps TensorBoard's warnings (truncated records, unreadable files) as problems instead
    of letting them reach the user's terminal as log noise."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: List[str] = []

    def emit(self, record):
        try:
            self.messages.append(record.getMessage())
        except Exception:  # a broken log record must not break reading
            pass


def read_logdir(
    logdir: str, runs: Optional[List[str]] = None, *, avoid_tensorflow: bool = False
) -> Tuple[List[Series], List[dict]]:
    """All scalar series under `logdir` and the problems met ({run, tag, reason}).

    `runs` (names as TensorBoard forms them: relative paths, "." for the logdir itself) limits
    reading to those run folders. `avoid_tensorflow` (for command-line processes only: it
    changes process-wide TensorBoard state) reads local logdirs with TensorBoard's TF stub.
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
    old_propagate = tb_logger.propagate
    tb_logger.addHandler(handler)
    tb_logger.propagate = False
    try:
        multiplexer = plugin_event_multiplexer.EventMultiplexer(
            tensor_size_guidance={"scalars": 0},  # 0 = keep every point
        )
        if runs is None:
            multiplexer.AddRunsFromDirectory(logdir)
        else:
            for run in runs:
                path = logdir if run == "." else os.path.join(logdir, *run.split("/"))
                multiplexer.AddRun(path, name=run)
        multiplexer.Reload()
        provider = tb_data_provider.MultiplexerDataProvider(multiplexer, logdir)
        series, problems = read_series(provider, tb_context.RequestContext(), "")
    finally:
        tb_logger.removeHandler(handler)
        tb_logger.propagate = old_propagate
    problems = list(problems)
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
    (then TensorBoard uses it, as it would anyway). Remote logdirs (gs://, ...) keep real TF gfile.
    """
    import sys
    import types

    from tb_lossdoctor.readers.logdir import is_url

    if is_url(logdir) or "tensorflow" in sys.modules or "tensorboard.compat.notf" in sys.modules:
        return
    # If `tensorboard.compat.tf` was already resolved, it resolved either to TensorFlow (then
    # "tensorflow" is in sys.modules and we returned above) or to the stub: the marker is moot.
    sys.modules["tensorboard.compat.notf"] = types.ModuleType("tensorboard.compat.notf")
