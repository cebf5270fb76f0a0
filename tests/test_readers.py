"""Readers on real event files written by the real writers (tf.summary, TensorBoard's
EventFileWriter): the data server and the Python multiplexer must agree."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from conftest import realworld_labels
from tb_lossdoctor.readers import data_server
from tb_lossdoctor.readers.logdir import LogdirError, read_logdir

_WALL = [1_700_000_000.0]


def _server_available() -> bool:
    try:
        data_server.server_binary_path()
        return True
    except data_server.DataServerError:
        return False


needs_server = pytest.mark.skipif(not _server_available(), reason="no TensorBoard data server binary")


# -- writers ---------------------------------------------------------------------------------


def write_simple(logdir, points, *, suffix=""):
    """tensorboardX / PyTorch / TF1 style: Summary.Value(simple_value=...). points: [(step, {tag: v})]."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    os.makedirs(logdir, exist_ok=True)
    w = EventFileWriter(str(logdir), filename_suffix=suffix)
    for step, values in points:
        _WALL[0] += 1
        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=t, simple_value=float(v)) for t, v in values.items()]
        )
        w.add_event(event_pb2.Event(wall_time=_WALL[0], step=step, summary=summary))
    w.close()
    return w


def write_f64_tensors(logdir, tag, values):
    """Scalar *float64* tensor summaries with the scalars plugin metadata (as some exporters write)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.scalar import metadata as scalar_metadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    os.makedirs(logdir, exist_ok=True)
    w = EventFileWriter(str(logdir))
    meta = scalar_metadata.create_summary_metadata(display_name=tag, description="")
    for step, v in enumerate(values):
        _WALL[0] += 1
        tensor = tensor_util.make_tensor_proto(np.float64(v))
        assert tensor.dtype == 2  # DT_DOUBLE
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=meta)])
        w.add_event(event_pb2.Event(wall_time=_WALL[0], step=step, summary=summary))
    w.close()


def write_tf2(logdir, scalars, start=0, non_scalar=False):
    """TF2 tf.summary.scalar (the Keras TensorBoard callback's format). scalars: {tag: values}."""
    tf = pytest.importorskip("tensorflow")
    writer = tf.summary.create_file_writer(str(logdir))
    with writer.as_default():
        for tag, values in scalars.items():
            for i, v in enumerate(values):
                tf.summary.scalar(tag, float(v), step=start + i)
        if non_scalar:
            tf.summary.histogram("weights", tf.random.normal([20]), step=0)
            tf.summary.text("notes", "hello", step=0)
    writer.flush()
    writer.close()


def curve(n, start=2.0, end=0.2, seed=0):
    rng = np.random.default_rng(seed)
    x = np.arange(n)
    return end + (start - end) * np.exp(-4 * x / max(n - 1, 1)) + rng.uniform(-0.01, 0.01, n)


# -- helpers ---------------------------------------------------------------------------------


def by_key(series):
    return {s.key: s for s in series}


def assert_same(a, b):
    a, b = by_key(a), by_key(b)
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k].steps, b[k].steps, err_msg=k)
        np.testing.assert_allclose(a[k].values, b[k].values, rtol=1e-6, err_msg=k)


def read_both(logdir):
    """{"server": ..., "python": ...}; "server" is the CLI's default reader ("auto"), which
    completes what the data server cannot read with the Python reader."""
    out = {}
    for reader in ("auto", "python") if _server_available() else ("python",):
        series, problems, info = read_logdir(str(logdir), reader)
        assert info["reader"] == ("server" if reader == "auto" else reader)
        out[info["reader"]] = (series, problems)
    return out


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed_logdir(tmp_path_factory):
    """Every supported flavour in one logdir."""
    root = tmp_path_factory.mktemp("mixed")
    # Keras layout: X/train + X/validation, TF2 tensor summaries.
    write_tf2(root / "keras_run" / "train", {"epoch_loss": curve(12), "epoch_accuracy": 1 - curve(12) / 3})
    write_tf2(root / "keras_run" / "validation", {"epoch_loss": curve(12, end=0.3, seed=1)})
    # simple_value (PyTorch / tensorboardX / TF1).
    write_simple(root / "torch_run", [(s, {"train/loss": v, "val/loss": v + 0.1}) for s, v in enumerate(curve(20))])
    # float64 scalar tensors.
    write_f64_tensors(root / "f64_run", "loss", curve(15, seed=3))
    # Several event files in one run: two writers, later steps in the second file.
    write_simple(root / "multi_file", [(s, {"loss": 1.0 / (s + 1)}) for s in range(0, 10)], suffix=".a")
    write_simple(root / "multi_file", [(s, {"loss": 1.0 / (s + 1)}) for s in range(10, 20)], suffix=".b")
    # Nested run folders.
    write_simple(root / "group" / "sub" / "deep_run", [(s, {"loss": 3.0 - 0.1 * s}) for s in range(8)])
    # A restarted run: steps 0..9, then a resume from step 5 with new values.
    write_simple(root / "restarted", [(s, {"loss": 10.0 + s}) for s in range(10)]
                 + [(s, {"loss": float(s)}) for s in range(5, 8)])
    return root


# -- tests -----------------------------------------------------------------------------------


def test_python_reader_reads_every_flavour(mixed_logdir):
    series, problems, info = read_logdir(str(mixed_logdir), "python")
    s = by_key(series)
    assert info["reader"] == "python"
    assert {
        "keras_run/train:epoch_loss",
        "keras_run/train:epoch_accuracy",
        "keras_run/validation:epoch_loss",
        "torch_run:train/loss",
        "torch_run:val/loss",
        "f64_run:loss",
        "multi_file:loss",
        "group/sub/deep_run:loss",
        "restarted:loss",
    } <= set(s)
    assert len(s["keras_run/train:epoch_loss"]) == 12
    np.testing.assert_allclose(s["keras_run/train:epoch_loss"].values, curve(12), rtol=1e-6)
    np.testing.assert_allclose(s["f64_run:loss"].values, curve(15, seed=3))
    np.testing.assert_array_equal(s["multi_file:loss"].steps, np.arange(20))
    assert not any(x.sampled for x in series)


@needs_server
def test_server_reader_reads_every_flavour_and_matches_python(mixed_logdir):
    both = read_both(mixed_logdir)
    server, _ = both["server"]
    python, _ = both["python"]
    assert len(server) >= 9
    assert_same(server, python)


@needs_server
def test_pure_server_reader_reports_float64_it_cannot_read(mixed_logdir):
    series, problems, info = read_logdir(str(mixed_logdir), "server")
    keys = set(by_key(series))
    assert "f64_run:loss" not in keys
    assert any(p["run"] == "f64_run" and p["tag"] == "loss" for p in problems)
    _, _, auto_info = read_logdir(str(mixed_logdir), "auto")
    assert auto_info["python_runs"] == ["f64_run"]
    python = [s for s in read_logdir(str(mixed_logdir), "python")[0] if s.run != "f64_run"]
    assert_same(series, python)


def test_restart_keeps_latest_write(mixed_logdir):
    for reader, (series, _) in read_both(mixed_logdir).items():
        s = by_key(series)["restarted:loss"]
        np.testing.assert_array_equal(s.steps, np.arange(8), err_msg=reader)
        np.testing.assert_array_equal(s.values, [10, 11, 12, 13, 14, 5, 6, 7], err_msg=reader)


def test_float64_values_are_exact(tmp_path):
    values = [1.0 + 1e-12, 2.5, 1e300]
    write_f64_tensors(tmp_path / "r", "loss", values)
    for reader, (series, _) in read_both(tmp_path).items():
        np.testing.assert_array_equal(by_key(series)["r:loss"].values, values, err_msg=reader)


def test_non_finite_values_survive(tmp_path):
    write_simple(tmp_path / "r", [(0, {"loss": 1.0}), (1, {"loss": float("nan")}), (2, {"loss": float("inf")})])
    for reader, (series, _) in read_both(tmp_path).items():
        v = by_key(series)["r:loss"].values
        assert v[0] == 1.0 and np.isnan(v[1]) and np.isposinf(v[2]), reader


def test_truncated_event_file_does_not_crash(tmp_path):
    write_simple(tmp_path / "r", [(s, {"loss": 1.0 / (s + 1)}) for s in range(50)])
    (f,) = list((tmp_path / "r").iterdir())
    data = f.read_bytes()
    f.write_bytes(data[: len(data) - 7])  # cut the last record in half
    for reader, (series, problems) in read_both(tmp_path).items():
        s = by_key(series)["r:loss"]
        assert 45 <= len(s) <= 50, reader
        np.testing.assert_allclose(s.values, 1.0 / (s.steps + 1))


def test_garbage_file_does_not_crash(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "events.out.tfevents.123.host").write_bytes(os.urandom(300))
    write_simple(tmp_path / "ok", [(s, {"loss": 1.0}) for s in range(3)])
    for reader, (series, _) in read_both(tmp_path).items():
        assert "ok:loss" in by_key(series), reader


def test_non_scalar_data_only(tmp_path):
    tf = pytest.importorskip("tensorflow")
    writer = tf.summary.create_file_writer(str(tmp_path / "r"))
    with writer.as_default():
        tf.summary.histogram("weights", tf.random.normal([20]), step=0)
        tf.summary.text("notes", "hello", step=0)
    writer.close()
    for reader, (series, _) in read_both(tmp_path).items():
        assert series == [], reader


def test_empty_dir(tmp_path):
    for reader, (series, problems) in read_both(tmp_path).items():
        assert series == [], reader


@pytest.mark.parametrize("reader", ["auto", "server", "python"])
def test_missing_logdir_and_file_raise_logdir_error(tmp_path, reader):
    with pytest.raises(LogdirError, match="does not exist"):
        read_logdir(str(tmp_path / "nope"), reader)
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(LogdirError, match="not a directory"):
        read_logdir(str(f), reader)


def test_auto_falls_back_to_python(tmp_path, monkeypatch):
    write_simple(tmp_path / "r", [(s, {"loss": 1.0}) for s in range(3)])

    def broken():
        raise data_server.DataServerError("no binary here")

    monkeypatch.setattr(data_server, "server_binary_path", broken)
    series, _, info = read_logdir(str(tmp_path), "auto")
    assert info["reader"] == "python" and "no binary here" in info["fallback_reason"]
    assert "r:loss" in by_key(series)
    with pytest.raises(data_server.DataServerError):
        read_logdir(str(tmp_path), "server")


@needs_server
def test_server_subprocess_is_shut_down(tmp_path):
    write_simple(tmp_path / "r", [(0, {"loss": 1.0})])
    with data_server.DataServer(str(tmp_path)) as server:
        popen = server._popen
        assert popen.poll() is None
        assert server.load_seconds is not None
    assert popen.poll() is not None


@needs_server
def test_unsupported_scheme_raises_data_server_error():
    with pytest.raises(data_server.DataServerError):
        data_server.read_logdir("nosuchscheme://bucket/logs", timeout=20)


def test_realworld_every_folder_both_readers(realworld_dir):
    folders = [Path(realworld_dir) / case for case in sorted(realworld_labels())]
    assert folders
    # One read of the whole tree per reader (fast), then check each folder is represented.
    both = read_both(realworld_dir)
    for reader, (series, problems) in both.items():
        runs = {s.run for s in series}
        for folder in folders:
            assert any(r == folder.name or r.startswith(folder.name + "/") for r in runs), (reader, folder)
    if "server" in both:
        a, b = by_key(both["server"][0]), by_key(both["python"][0])
        assert sorted(a) == sorted(b)
        for k in a:
            # Logs that write several values at one step differ by design: the data server keeps
            # the last write per step, the Python multiplexer keeps them all (merged by
            # make_series). Steps agree everywhere.
            np.testing.assert_array_equal(a[k].steps, b[k].steps, err_msg=k)


@needs_server
def test_realworld_each_folder_via_server(realworld_dir):
    for folder in (Path(realworld_dir) / case for case in sorted(realworld_labels())):
        series, problems, info = read_logdir(str(folder), "server")
        assert series, folder


def test_data_server_columnar_read_equals_tensorboards_read_scalars():
    """The columnar shortcut on the data server's stub gives exactly what TensorBoard's public
    `read_scalars` gives, filtered or not."""
    import numpy as np
    from tensorboard import context as tb_context
    from tensorboard.data import provider as tb_provider

    from tb_lossdoctor.readers import data_server, provider as reader

    demo = Path(__file__).resolve().parents[1] / "demo" / "logs"
    try:
        data_server.server_binary_path()
    except data_server.DataServerError:
        pytest.skip("no TensorBoard data server binary")
    ctx = tb_context.RequestContext()
    with data_server.DataServer(str(demo)) as server:
        for rtf in (tb_provider.RunTagFilter(), tb_provider.RunTagFilter(runs=["healthy/train"], tags=["epoch_loss"])):
            fast = reader._columns_of(reader._data_server_request(server.provider, "", rtf, reader.NO_DOWNSAMPLING).result())
            slow = list(reader._provider_columns(server.provider, ctx, "", rtf, reader.NO_DOWNSAMPLING))
            assert fast is not None and len(fast) == len(slow) > 0
            for a, b in zip(sorted(fast, key=lambda c: c[:2]), sorted(slow, key=lambda c: c[:2])):
                assert a[:2] == b[:2]
                for x, y in zip(a[2:], b[2:]):
                    np.testing.assert_array_equal(x, y)


def test_columnar_read_is_version_gated_and_the_public_path_gives_the_same_series(monkeypatch):
    """Outside the TensorBoard versions it was tested with, the shortcut is off and the public
    `read_scalars` path serves the same series."""
    from tensorboard import context as tb_context

    from tb_lossdoctor.readers import data_server, provider as reader

    assert reader.columnar_supported("2.21.0") and not reader.columnar_supported("3.0.0")
    assert not reader.columnar_supported("2.11.1") and not reader.columnar_supported("nightly")
    try:
        data_server.server_binary_path()
    except data_server.DataServerError:
        pytest.skip("no TensorBoard data server binary")
    demo = Path(__file__).resolve().parents[1] / "demo" / "logs"
    ctx = tb_context.RequestContext()
    monkeypatch.setattr(reader, "READ_BATCH_RUNS", 3)  # many batches, each asked for ahead
    with data_server.DataServer(str(demo)) as server:
        fast, _ = reader.read_series(server.provider, ctx, "")
        monkeypatch.setattr(reader, "COLUMNAR_TESTED", ((0, 0), (0, 1)))
        from tensorboard.data import provider as tb_provider

        assert reader._data_server_request(server.provider, "", tb_provider.RunTagFilter(), 10) is None
        public, _ = reader.read_series(server.provider, ctx, "")
    assert [(s.run, s.tag) for s in fast] == [(s.run, s.tag) for s in public]
    for a, b in zip(fast, public):
        np.testing.assert_array_equal(a.steps, b.steps)
        np.testing.assert_array_equal(a.values, b.values)
