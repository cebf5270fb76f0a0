"""Read every scalar of an experiment through a TensorBoard `DataProvider`.

This one adapter serves all sources: the plugin's `context.data_provider` (Python multiplexer or
the Rust data server), and the CLI's own providers built over a logdir.
"""

from __future__ import annotations

import logging
from operator import attrgetter
from typing import Callable, Iterator, List, Optional, Tuple

import numpy as np
from tensorboard.data import provider as tb_provider

from tb_lossdoctor.series import Series, make_series

logger = logging.getLogger(__name__)

SCALARS_PLUGIN = "scalars"
# Ask for everything the provider kept; the provider itself may have sampled at load time.
NO_DOWNSAMPLING = 10**9
# Runs per read request: bounds the memory of one answer on logdirs of thousands of runs.
READ_BATCH_RUNS = 200

_STEP, _VALUE, _WALL = attrgetter("step"), attrgetter("value"), attrgetter("wall_time")
# One curve as arrays: (run, tag, steps, values, wall times).
Columns = Tuple[str, str, np.ndarray, np.ndarray, np.ndarray]


def list_scalar_tags(provider, ctx, experiment_id: str) -> dict:
    """{run: {tag: ScalarTimeSeries}} for the experiment's scalars."""
    return provider.list_scalars(ctx, experiment_id=experiment_id, plugin_name=SCALARS_PLUGIN)


def read_series(
    provider,
    ctx,
    experiment_id: str,
    *,
    runs: Optional[List[str]] = None,
    tags: Optional[List[str]] = None,
    downsample: int = NO_DOWNSAMPLING,
    sample_limit: Optional[int] = None,
    on_batch: Optional[Callable[[List[Series]], None]] = None,
) -> Tuple[List[Series], List[dict]]:
    """Read scalars (`read_scalars` requests of `READ_BATCH_RUNS` runs) into `Series`.

    `sample_limit` is the per-tag point budget the provider was loaded with (TensorBoard's
    `--samples_per_plugin scalars=N`, 1,000 by default): a series holding exactly that many points
    is marked as sampled. `on_batch` is called with each batch's series as soon as it is read,
    but the last (the CLI starts diagnosing while the next batch is read; the last batch is the
    caller's when this returns, and a logdir of one batch is not worth a second process). Returns
    the series and a list of problems ({run, tag, reason}).
    """
    runs = _all_runs(provider, ctx, experiment_id) if runs is None else list(runs)
    series: List[Series] = []
    problems: List[dict] = []
    filters = [tb_provider.RunTagFilter(runs=runs[start : start + READ_BATCH_RUNS], tags=tags)
               for start in range(0, len(runs), READ_BATCH_RUNS)]
    # Runs are read a batch at a time and turned into arrays before the next batch, so the
    # provider's per-request answer never holds the whole logdir at once. On the data server the
    # next batch is already asked for while this one is converted (its answer is the server's
    # work, in its own process): at most two answers are held at a time.
    ahead = _data_server_request(provider, experiment_id, filters[0], downsample) if filters else None
    for index, rtf in enumerate(filters):
        pending = ahead
        if pending is not None and index + 1 < len(filters):
            ahead = _data_server_request(provider, experiment_id, filters[index + 1], downsample)
        if pending is not None:
            columns = _columns_of(pending.result())
        else:
            columns = _provider_columns(provider, ctx, experiment_id, rtf, downsample)
        batch: List[Series] = []
        for run, tag, steps, values, walls in columns:
            try:
                sampled = bool(sample_limit) and steps.size >= sample_limit
                batch.append(make_series(run, tag, steps, values, walls, sampled=sampled))
            except (TypeError, ValueError, OverflowError) as exc:
                problems.append({"run": run, "tag": tag, "reason": f"unreadable points: {exc}"})
        del columns
        series.extend(batch)
        if on_batch is not None and index + 1 < len(filters):
            on_batch([s for s in batch if len(s)])
    series.sort(key=lambda s: (s.run, s.tag))
    return series, problems


def _all_runs(provider, ctx, experiment_id: str) -> List[str]:
    """Every run of the experiment. `list_runs`, not `list_scalars`: the data server leaves out
    of its scalar listing the tags it cannot read (float64 tensors), and those must still be
    read (empty) so the caller can tell what it could not use."""
    return sorted(r.run_name for r in provider.list_runs(ctx, experiment_id=experiment_id))


def _provider_columns(provider, ctx, experiment_id, rtf, downsample) -> Iterator[Columns]:
    """Through the public `read_scalars`: one `ScalarDatum` object per point."""
    data = provider.read_scalars(
        ctx,
        experiment_id=experiment_id,
        plugin_name=SCALARS_PLUGIN,
        downsample=downsample,
        run_tag_filter=rtf,
    )
    for run, by_tag in data.items():
        for tag, points in by_tag.items():
            n = len(points)
            yield (
                run,
                tag,
                np.fromiter(map(_STEP, points), dtype=np.int64, count=n),
                np.fromiter(map(_VALUE, points), dtype=np.float64, count=n),
                np.fromiter(map(_WALL, points), dtype=np.float64, count=n),
            )


# TensorBoard releases whose data-server client this module's columnar read was tested with
# (the private `_stub` and the `ReadScalarsRequest` protocol): [first, last] major.minor.
COLUMNAR_TESTED = ((2, 12), (2, 21))


def columnar_supported(version: str) -> bool:
    """True for a TensorBoard version inside `COLUMNAR_TESTED` (a newer one uses the public API
    until the shortcut is tested against it)."""
    try:
        major_minor = tuple(int(x) for x in version.split(".")[:2])
    except ValueError:
        return False
    return COLUMNAR_TESTED[0] <= major_minor <= COLUMNAR_TESTED[1]


def columnar_stub(provider):
    """The gRPC stub of TensorBoard's data server behind `provider`, for the TensorBoard versions
    the direct requests of this package were tested with (`COLUMNAR_TESTED`); None for any
    other provider or version (then TensorBoard's public API is used)."""
    try:
        from tensorboard import version as tb_version
        from tensorboard.data import grpc_provider
    except ImportError:
        return None
    if not isinstance(provider, grpc_provider.GrpcDataProvider) or not columnar_supported(tb_version.VERSION):
        return None
    return getattr(provider, "_stub", None)  # noqa: SLF001 (version-gated above)


def _data_server_request(provider, experiment_id, rtf, downsample):
    """The same request TensorBoard's `GrpcDataProvider.read_scalars` sends to its data server,
    sent on the provider's stub without waiting (a gRPC future); None when not applicable.

    TensorBoard's `read_scalars` turns the server's columnar answer into one Python object per
    point, which costs more than the read itself on large logdirs; `_columns_of` keeps the
    columns as arrays instead. Used only for TensorBoard versions it was tested with
    (`COLUMNAR_TESTED`); for any other provider or version the public path is used. A failing
    request raises from `result()`, exactly as the public call would: nothing is retried
    behind the caller's back.
    """
    stub = columnar_stub(provider)
    if stub is None:
        return None
    from tensorboard.data.proto import data_provider_pb2

    req = data_provider_pb2.ReadScalarsRequest()
    req.experiment_id = experiment_id
    req.plugin_filter.plugin_name = SCALARS_PLUGIN
    if rtf.runs is not None:
        req.run_tag_filter.runs.names.extend(sorted(rtf.runs))
    if rtf.tags is not None:
        req.run_tag_filter.tags.names.extend(sorted(rtf.tags))
    req.downsample.num_points = downsample
    return stub.ReadScalars.future(req)


def _columns_of(res) -> List[Columns]:
    """The columns of a `ReadScalarsResponse`, as arrays."""
    out: List[Columns] = []
    for run_entry in res.runs:
        for tag_entry in run_entry.tags:
            d = tag_entry.data
            out.append((
                run_entry.run_name,
                tag_entry.tag_name,
                np.array(d.step, dtype=np.int64),
                np.array(d.value, dtype=np.float64),
                np.array(d.wall_time, dtype=np.float64),
            ))
    return out
