"""Hyperparameters recorded with TensorBoard's HParams plugin, read through a `DataProvider`.

Keras/TF (`hp.hparams`, `hp.KerasCallback`), PyTorch's `SummaryWriter.add_hparams` and
Lightning's `log_hyperparams` all write a `session_start_info` summary of the `hparams` plugin;
its values live in the summary metadata. We read them exactly as TensorBoard's HParams dashboard
does (`hparams.backend_context.Context.hparams_metadata`): `list_tensors(plugin_name="hparams")`
for the metadata, decoded by `hparams.metadata.parse_session_start_info_plugin_data`. A provider
that implements the newer `read_hyperparameters` (TensorBoard 2.21 declares it; neither its
multiplexer nor its data-server provider fills it) is asked when the listing finds nothing.
"""

from __future__ import annotations

import logging
from typing import Dict

from tb_lossdoctor.hparams import HParams, record_values

logger = logging.getLogger(__name__)


def read_hparams(provider, ctx, experiment_id: str) -> Dict[str, HParams]:
    """{TensorBoard run: {hyperparameter: value}} of every run with an HParams record; {} when
    there is none or the provider cannot list them (never raises: hyperparameters are extra)."""
    try:
        found = _from_tensor_metadata(provider, ctx, experiment_id)
        if not found:
            found = _from_read_hyperparameters(provider, ctx, experiment_id)
        return found
    except Exception:  # a provider without the plugin's data, a bad record: no hyperparameters
        logger.debug("lossdoctor: reading HParams records failed", exc_info=True)
        return {}


def _from_tensor_metadata(provider, ctx, experiment_id: str) -> Dict[str, HParams]:
    from tensorboard.plugins.hparams import metadata

    listing = provider.list_tensors(ctx, experiment_id=experiment_id, plugin_name=metadata.PLUGIN_NAME)
    out: Dict[str, HParams] = {}
    for run, tags in (listing or {}).items():
        series = tags.get(metadata.SESSION_START_INFO_TAG)
        if series is None:
            continue
        try:
            info = metadata.parse_session_start_info_plugin_data(series.plugin_content)
        except Exception:  # one undecodable record costs that run only
            logger.debug("lossdoctor: undecodable HParams record in run %r", run, exc_info=True)
            continue
        values = record_values(info.hparams)
        if values:
            out[run] = values
    return out


def _from_read_hyperparameters(provider, ctx, experiment_id: str) -> Dict[str, HParams]:
    reader = getattr(provider, "read_hyperparameters", None)
    if reader is None:
        return {}
    groups = reader(ctx, experiment_ids=[experiment_id]) or []
    out: Dict[str, HParams] = {}
    for group in groups:
        values = {}
        for hp in getattr(group, "hyperparameter_values", []) or []:
            value = getattr(hp, "value", None)
            if isinstance(value, bool) or isinstance(value, str):
                values[hp.hyperparameter_name] = value
            elif isinstance(value, (int, float)):
                values[hp.hyperparameter_name] = float(value)
        for session in getattr(group, "sessions", []) or []:
            if values and getattr(session, "run", None) is not None:
                out[session.run] = dict(values)
    return out


def freeze(records: Dict[str, HParams]) -> tuple:
    """A hashable, order-free form of `read_hparams`'s answer (a cache key)."""
    return tuple(sorted((run, tuple(sorted((k, repr(v)) for k, v in values.items())))
                        for run, values in records.items()))
