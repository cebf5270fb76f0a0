"""Read every scalar of an experiment through a TensorBoard `DataProvider`.

This one adapter serves all sources: the plugin's `context.data_provider` (Python multiplexer or
the Rust data server), and the CLI's own providers built over a logdir.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from tensorboard.data import provider as tb_provider

from tb_lossdoctor.series import Series, make_series

SCALARS_PLUGIN = "scalars"
# Ask for everything the provider kept; the provider itself may have sampled at load time.
NO_DOWNSAMPLING = 10**9


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
) -> Tuple[List[Series], List[dict]]:
    """Read scalars in one `read_scalars` call and convert them to `Series`.

    `sample_limit` is the per-tag point budget the provider was loaded with (TensorBoard's
    `--samples_per_plugin scalars=N`, 1,000 by default): a series holding exactly that many points
    is marked as sampled. Returns the series and a list of problems ({run, tag, reason}).
    """
    data = provider.read_scalars(
        ctx,
        experiment_id=experiment_id,
        plugin_name=SCALARS_PLUGIN,
        downsample=downsample,
        run_tag_filter=tb_provider.RunTagFilter(runs=runs, tags=tags),
    )
    series: List[Series] = []
    problems: List[dict] = []
    for run in sorted(data):
        for tag in sorted(data[run]):
            points = data[run][tag]
            try:
                steps = [p.step for p in points]
                values = [p.value for p in points]
                walls = [p.wall_time for p in points]
                sampled = bool(sample_limit) and len(points) >= sample_limit
                series.append(make_series(run, tag, steps, values, walls, sampled=sampled))
            except (TypeError, ValueError, OverflowError) as exc:
                problems.append({"run": run, "tag": tag, "reason": f"unreadable points: {exc}"})
    return series, problems
