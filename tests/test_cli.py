"""The `lossdoctor` CLI and its renderers, on real event files (TensorBoard's EventFileWriter)."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import SimpleValueWriter, decaying
from tb_lossdoctor import cli, formatting, markdown_view

_WALL = [1_700_000_000.0]


def write_simple(logdir, tags, start=0):
    """simple_value scalars (PyTorch / tensorboardX style). tags: {tag: values}."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    os.makedirs(logdir, exist_ok=True)
    w = EventFileWriter(str(logdir))
    n = max(len(v) for v in tags.values())
    for i in range(n):
        _WALL[0] += 1
        values = [summary_pb2.Summary.Value(tag=t, simple_value=float(v[i])) for t, v in tags.items() if i < len(v)]
        w.add_event(event_pb2.Event(wall_time=_WALL[0], step=start + i, summary=summary_pb2.Summary(value=values)))
    w.close()


def healthy(n=60):
    return [0.2 + 1.8 * math.exp(-5 * i / n) for i in range(n)]


def nan_loss(n=60):
    return healthy(n)[:40] + [float("nan")] * (n - 40)


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    write_simple(root / "good", {"train/loss": healthy(), "val/loss": [v + 0.05 for v in healthy()]})
    write_simple(root / "broken", {"train/loss": nan_loss()})
    return root


@pytest.fixture(scope="module")
def hostile_logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    write_simple(root / "<img src=x onerror=alert(1)>", {"loss": nan_loss()})
    write_simple(root / "a|b", {"loss": nan_loss()})
    return root


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- formats ---------------------------------------------------------------------------------


def test_json_is_exactly_the_report(logdir, capsys):
    code, out, err = run_cli(capsys, logdir, "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["version"] == 1
    assert {"version", "generated_at", "runs"} <= set(report)
    names = {r["run"] for r in report["runs"]}
    assert {"good", "broken"} <= names
    for run in report["runs"]:
        assert {"run", "status", "series", "findings"} <= set(run)
        assert run["status"] in ("ok", "warning", "error")
        for s in run["series"]:
            assert {"run", "tag", "role", "metric", "points"} <= set(s)
        for f in run["findings"]:
            assert {"code", "severity", "title", "summary", "metric", "tags", "step", "step_range",
                    "evidence", "advice", "confidence"} <= set(f)


def test_in_process_callers_keep_their_garbage_collector(logdir, capsys):
    """Only the `lossdoctor` program marks its objects as living until exit (`gc.freeze`, which is
    process-wide); a caller passing argv keeps its collector as it was."""
    import gc

    before = gc.get_freeze_count()
    assert cli.main([str(logdir), "--format", "json"]) in (cli.EXIT_OK, cli.EXIT_FAIL)
    assert json.loads(capsys.readouterr().out)["runs"]
    assert gc.get_freeze_count() == before


def test_text_lists_runs_worst_first_without_colour(logdir, capsys, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    code, out, err = run_cli(capsys, logdir)
    assert code == 0, err
    assert "\033[" not in out  # captured stdout is not a TTY
    first = out.splitlines()[0]
    assert re.match(r"lossdoctor: 2 runs: \d+ errors?, \d+ warnings?, \d+ ok$", first)
    assert "good" in out and "broken" in out
    report = json.loads(run_cli(capsys, logdir, "--format", "json")[1])
    order = [r["run"] for r in report["runs"]]
    assert out.index(order[0]) < out.index(order[1])


def test_text_colour_only_on_request():
    report = {"version": 1, "runs": [{"run": "r", "status": "error", "series": [], "findings": [
        {"code": "nan", "severity": "error", "title": "t", "summary": "s", "step": 5, "advice": ["a"]}]}]}
    assert "\033[" in formatting.render_text(report, color=True)
    assert "\033[" not in formatting.render_text(report, color=False)


class _Tty:
    def isatty(self):
        return True


class _Pipe:
    def isatty(self):
        return False


@pytest.mark.parametrize("env, tty, pipe", [
    ({}, True, False),
    ({"NO_COLOR": "1"}, False, False),
    ({"NO_COLOR": ""}, True, False),  # no-color.org: only a non-empty value counts
    ({"TERM": "dumb"}, False, False),
    ({"TERM": "xterm-256color"}, True, False),
    ({"FORCE_COLOR": "1"}, True, True),  # force-color.org: on even when piped
    ({"FORCE_COLOR": "true", "TERM": "dumb"}, True, True),
    ({"FORCE_COLOR": ""}, True, False),
    ({"FORCE_COLOR": "0"}, False, False),
    ({"FORCE_COLOR": "false"}, False, False),
    ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, False, False),  # the opt-out wins
])
def test_use_color_conventions(env, tty, pipe):
    assert cli.use_color(_Tty(), env) is tty
    assert cli.use_color(_Pipe(), env) is pipe


def test_force_color_through_a_pipe(logdir, tmp_path):
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM")}
    argv = [sys.executable, "-m", "tb_lossdoctor", str(logdir)]
    forced = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=dict(base, FORCE_COLOR="1"))
    plain = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=dict(base, FORCE_COLOR="1", NO_COLOR="1"))
    assert forced.returncode == plain.returncode == 0, forced.stderr + plain.stderr
    assert "\033[1;31m" in forced.stdout and "\033[" not in plain.stdout
    def lines(text):  # all but the read time
        return [line for line in text.splitlines() if not line.startswith("read with")]

    assert lines(re.sub(r"\033\[[0-9;]*m", "", forced.stdout)) == lines(plain.stdout)


def test_version(capsys):
    from importlib import metadata

    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out == f"lossdoctor {metadata.version('tb-lossdoctor')} (tensorboard {metadata.version('tensorboard')})\n"
    proc = subprocess.run([sys.executable, "-m", "tb_lossdoctor", "--version"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == out


@pytest.mark.parametrize("counts, line", [
    ((1, 0, 0), "1 run: 1 error, 0 warnings, 0 ok"),
    ((0, 1, 1), "2 runs: 0 errors, 1 warning, 1 ok"),
    ((3, 2, 0), "5 runs: 3 errors, 2 warnings, 0 ok"),
    ((0, 0, 0), "0 runs: 0 errors, 0 warnings, 0 ok"),
])
def test_summary_plurals(counts, line):
    runs = [{"run": f"r{i}", "status": s, "series": [], "findings": []}
            for i, s in enumerate(["error"] * counts[0] + ["warning"] * counts[1] + ["ok"] * counts[2])]
    report = {"version": 1, "runs": runs, "problems": [{"run": "", "tag": "", "reason": "x"}]}
    assert formatting.summary_line(report) == line
    assert formatting.render_text(report).startswith(f"lossdoctor: {line}\n")
    assert "could not use 1 item:" in formatting.render_text(report)
    assert markdown_view.render_markdown(report).startswith(f"## Loss Doctor: {line}\n")
    assert "Could not use 1 item<" in markdown_view.render_markdown(report)


def test_text_shows_finding_details_sampling_and_problems():
    report = {
        "version": 1,
        "sampled": True,
        "problems": [{"run": "r/train", "tag": "loss", "reason": "unreadable points"}],
        "runs": [
            {"run": "bad\x1b[31mrun", "status": "error", "series": [], "findings": [
                {"code": "nan", "severity": "error", "title": "Loss became NaN at step 1,204",
                 "summary": "It was 3.2 then NaN.", "step": 1204, "step_range": [1180, 1204],
                 "tags": ["bad:loss"], "advice": ["Lower the learning rate", "Clip gradients"]}]},
            {"run": "fine", "status": "ok", "series": [{}], "findings": [
                {"code": "converged", "severity": "info", "title": "Converged", "summary": ""}]},
        ],
    }
    text = formatting.render_text(report)
    assert "2 runs: 1 error, 0 warnings, 1 ok" in text.splitlines()[0]
    assert "Loss became NaN at step 1,204" in text and "It was 3.2 then NaN." in text
    assert "1,204" in text and "- Lower the learning rate" in text and "- Clip gradients" in text
    assert "\x1b" not in text  # a hostile run name cannot send terminal escapes
    assert "sampled" in text
    assert "r/train:loss: unreadable points" in text
    assert [l for l in text.splitlines() if "fine" in l] == ["[OK]     fine - Converged"]


def test_markdown_escapes_hostile_run_names(hostile_logdir, capsys):
    code, out, err = run_cli(capsys, hostile_logdir, "--format", "markdown")
    assert code == 0, err
    assert "<img" not in out
    assert "&lt;img src\\=x onerror\\=alert\\(1\\)&gt;" in out
    assert "a&#124;b" in out
    # Every table row keeps exactly its 5 cell separators: the names did not add columns.
    rows = [l for l in out.splitlines() if l.startswith("| ") and "---" not in l]
    assert len(rows) == 3
    assert all(l.count("|") == 5 for l in rows)
    assert "### " in out  # non-ok runs get a section


def test_md_escape():
    e = markdown_view.md_escape
    assert e("`rm -rf`") == "\\`rm \\-rf\\`"
    assert e("<script>") == "&lt;script&gt;"
    assert e("a|b") == "a&#124;b"
    assert e("[x](javascript:alert(1))") == "\\[x\\]\\(javascript\\:alert\\(1\\)\\)"
    assert e("@team") == "@\u200bteam"
    assert e("line\nbreak") == "line break"
    assert e("**bold** _it_ # h") == "\\*\\*bold\\*\\* \\_it\\_ \\# h"


def test_markdown_summary_table_and_sections():
    report = {"version": 1, "runs": [
        {"run": "bad", "status": "warning", "series": [], "findings": [
            {"code": "overfitting", "severity": "warning", "title": "Overfitting", "summary": "s",
             "step": 10, "advice": ["stop early"]}]},
        {"run": "fine", "status": "ok", "series": [], "findings": []},
    ]}
    md = markdown_view.render_markdown(report)
    assert "| status | verdict | events | run |" in md
    assert "| overfitting | - | bad |" in md
    assert "Verdict: **overfitting**" in md
    assert "### " in md and "fine" in md
    assert md.count("### ") == 1  # ok runs have no section
    assert "- stop early" in md


# -- exit codes ------------------------------------------------------------------------------


def test_fail_on(logdir, capsys):
    assert run_cli(capsys, logdir)[0] == 0  # default: never fail
    assert run_cli(capsys, logdir, "--fail-on", "error")[0] == 1  # the NaN run
    assert run_cli(capsys, logdir, "--fail-on", "warning")[0] == 1
    code, out, _ = run_cli(capsys, logdir, "--fail-on", "error", "--run", "^good$", "--format", "json")
    report = json.loads(out)
    assert [r["run"] for r in report["runs"]] == ["good"]
    errors = [f for f in report["runs"][0]["findings"] if f["severity"] == "error"]
    assert code == (1 if errors else 0)


def test_run_filter(logdir, capsys):
    code, out, _ = run_cli(capsys, logdir, "--run", "brok", "--format", "json")
    assert code == 0
    assert [r["run"] for r in json.loads(out)["runs"]] == ["broken"]
    code, _, err = run_cli(capsys, logdir, "--run", "^nomatch$")
    assert code == 2 and "--run" in err


@pytest.mark.parametrize("bad", ["(", "[a-", "*x"])
def test_invalid_regex(logdir, capsys, bad):
    code, out, err = run_cli(capsys, logdir, "--run", bad)
    assert code == 2
    assert "invalid --run" in err and "Traceback" not in err
    assert out == ""


def test_missing_path(tmp_path, capsys):
    code, out, err = run_cli(capsys, tmp_path / "nope")
    assert code == 2
    assert str(tmp_path / "nope") in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_file_instead_of_dir(tmp_path, capsys):
    f = tmp_path / "x.txt"
    f.write_text("hi")
    code, out, err = run_cli(capsys, f)
    assert code == 2 and out == ""
    assert err == (f"lossdoctor: error: logdir is a file, not a directory: {f}; "
                   f"pass the folder that holds it ({tmp_path})\n")


def test_empty_dir(tmp_path, capsys):
    code, _, err = run_cli(capsys, tmp_path)
    assert code == 2 and "no scalar data" in err and str(tmp_path) in err


def test_usage_errors(capsys, logdir):
    with pytest.raises(SystemExit) as exc:
        cli.main([])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        cli.main([str(logdir), "--format", "yaml"])
    assert exc.value.code == 2
    assert "--format" in capsys.readouterr().err


@pytest.mark.parametrize("reader", ["server", "python"])
def test_readers_selectable(logdir, capsys, reader):
    if reader == "server":
        from tb_lossdoctor.readers import data_server

        try:
            data_server.server_binary_path()
        except data_server.DataServerError:
            pytest.skip("no data server")
    code, out, err = run_cli(capsys, logdir, "--reader", reader, "--format", "json")
    assert code == 0, err
    assert {"good", "broken"} <= {r["run"] for r in json.loads(out)["runs"]}


def test_python_dash_m_subprocess(logdir, tmp_path):
    env = dict(os.environ, NO_COLOR="1")
    proc = subprocess.run(
        [sys.executable, "-m", "tb_lossdoctor", str(logdir), "--format", "json", "--fail-on", "error"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode == 1, proc.stderr
    assert {"good", "broken"} <= {r["run"] for r in json.loads(proc.stdout)["runs"]}
    proc = subprocess.run(
        [sys.executable, "-m", "tb_lossdoctor", str(tmp_path / "missing")],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert proc.returncode == 2
    assert "missing" in proc.stderr and "Traceback" not in proc.stderr


def test_realworld_all_formats(realworld_dir, capsys):
    for fmt in ("json", "text", "markdown"):
        code, out, err = run_cli(capsys, realworld_dir, "--format", fmt)
        assert code == 0, err
        assert ("keras\\_recommend" if fmt == "markdown" else "keras_recommend") in out


def test_the_logdir_itself_is_named_after_its_folder(tmp_path, capsys):
    SimpleValueWriter(tmp_path / "resnet_sweep").add("loss", decaying(30)).close()
    code, out, _ = run_cli(capsys, tmp_path / "resnet_sweep")
    assert code == 0 and "resnet_sweep (the logdir itself)" in out


def test_json_has_one_line_per_run_and_is_the_engines_report(logdir, capsys):
    """The CLI's JSON layout: one line per run entry (greppable), the same data as the engine's
    report serialised by json.dumps."""
    from tb_lossdoctor.engine import diagnose
    from tb_lossdoctor.readers.logdir import read_logdir

    code, out, err = run_cli(capsys, logdir, "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    run_lines = [line for line in out.splitlines() if line.startswith('    {"run": ')]
    assert [json.loads(line.rstrip(","))["run"] for line in run_lines] == [r["run"] for r in report["runs"]]
    series, problems, info = read_logdir(str(logdir))
    direct = json.loads(json.dumps(diagnose(series, problems=problems, hparams=info.get("hparams")),
                                   default=str))
    for r in (report, direct):
        r.pop("generated_at")
    assert report == direct


@pytest.fixture(scope="module")
def many_runs(tmp_path_factory):
    """400 small runs (simple_value, TensorBoard's EventFileWriter): enough for --jobs to split
    the run groups between processes. Every fifth one has a NaN, every seventh overfits."""
    root = tmp_path_factory.mktemp("many")
    for i in range(400):
        train = decaying(40, noise=0.02, seed=i)
        val = [v + 0.1 for v in decaying(40, noise=0.02, seed=1000 + i)]
        if i % 7 == 0:
            val = val[:20] + [val[19] + 0.03 * k for k in range(1, 21)]
        if i % 5 == 0:
            train = train[:30] + [float("nan")] * 10
        write_simple(root / f"run{i:03d}", {"train/loss": train, "val/loss": val})
    return root


def test_jobs_split_the_work_and_change_nothing(many_runs):
    """`--jobs 2` (a forked worker diagnoses half of the run groups) gives the same report as
    `--jobs 1`, in the same order, and every run is there."""
    def report(jobs):
        proc = subprocess.run(
            [sys.executable, "-m", "tb_lossdoctor", str(many_runs), "--format", "json", "--jobs", str(jobs)],
            capture_output=True, text=True, timeout=300, env=dict(os.environ, NO_COLOR="1"),
        )
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        out.pop("generated_at")
        return out

    one, two = report(1), report(2)
    assert len(one["runs"]) == 400
    assert one == two
    verdicts = {r["run"]: r["status"] for r in one["runs"]}
    assert all(verdicts[f"run{i:03d}"] == "error" for i in range(0, 400, 5))  # the NaN runs


def test_jobs_must_be_positive(logdir, capsys):
    code, _, err = run_cli(capsys, logdir, "--jobs", "0")
    assert code == 2 and "--jobs" in err


def test_group_pool_sends_work_to_its_worker(many_runs):
    from tb_lossdoctor.engine import diagnose
    from tb_lossdoctor.parallel import GroupPool
    from tb_lossdoctor.readers.logdir import read_logdir

    series, problems, _ = read_logdir(str(many_runs))
    alone = diagnose(series, problems=problems)
    with GroupPool(1) as pool:
        shared = diagnose(series, problems=problems, pool=pool)
        # The worker's share is 200 of the 400 groups; tasks it had not started when this
        # process finished its own share are taken back, the first ones never are.
        assert 0 < pool.sent <= 200
    for r in (alone, shared):
        r.pop("generated_at")
    assert alone == shared


def _die_in_worker(groups, settings):
    os._exit(3)  # as a worker killed by the OOM killer would


def test_a_dead_worker_loses_nothing(many_runs, monkeypatch, caplog):
    """A worker that dies mid-task: its run groups are diagnosed in-process, the report is whole."""
    from tb_lossdoctor import parallel
    from tb_lossdoctor.engine import diagnose
    from tb_lossdoctor.readers.logdir import read_logdir

    series, problems, _ = read_logdir(str(many_runs))
    alone = diagnose(series, problems=problems)
    monkeypatch.setattr(parallel, "_diagnose_chunk", _die_in_worker)
    with parallel.GroupPool(1) as pool:
        shared = diagnose(series, problems=problems, pool=pool)
        assert pool.sent == 0  # nothing came back from the dead worker
    assert "worker process failed" in caplog.text
    for r in (alone, shared):
        r.pop("generated_at")
    assert alone == shared


def _sleep_then(value):
    import time

    time.sleep(60)
    return value


def test_a_worker_dying_after_tasks_were_taken_back_does_not_hang(monkeypatch):
    """Python 3.11's executor, when a worker dies, fails every pending task but stops at one
    that was cancelled (taken back) meanwhile, and never settles the rest: waiting on those must
    end (computed here) instead of hanging the CLI forever. The executor thread's
    InvalidStateError traceback does not reach the user's terminal; other threads' errors do."""
    import multiprocessing
    import signal
    import threading
    from concurrent.futures import ProcessPoolExecutor

    from tb_lossdoctor.parallel import Task

    escaped = []  # what reaches the thread exception hook in force (the terminal's, for a user)
    monkeypatch.setattr(threading, "excepthook", lambda args: escaped.append(args.exc_type))
    executor = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
    try:
        tasks = [Task([0], executor.submit(_sleep_then, ["worker"]), lambda: ["here"], executor)]
        time.sleep(0.5)  # the worker is busy with the first task
        tasks += [Task([i], executor.submit(str, i), (lambda i=i: [f"here {i}"]), executor) for i in range(1, 7)]
        time.sleep(0.3)
        assert any(t.take_back() for t in tasks[4:6])  # queued, not yet sent: taken back
        for process in list(executor._processes.values()):
            os.kill(process.pid, signal.SIGKILL)
        got = {}
        waiter = threading.Thread(target=lambda: got.update(last=tasks[-1].results(on_failure=lambda exc: None)))
        waiter.start()
        waiter.join(timeout=30)
        assert not waiter.is_alive(), "waiting on a task of a broken pool hung"
        assert got["last"] == ["here 6"]
        executor._executor_manager_thread.join(10)
        assert escaped == []
        other = threading.Thread(target=lambda: 1 / 0)
        other.start()
        other.join()
        assert escaped == [ZeroDivisionError]
    finally:
        executor.shutdown(wait=False, cancel_futures=True)


def test_a_logdir_read_in_one_batch_stays_in_this_process(tmp_path):
    """Fewer runs than one read batch: the reader has nothing to hand over before the read
    ends, and so few groups are diagnosed here rather than shipped to a worker."""
    from tb_lossdoctor.engine import diagnose
    from tb_lossdoctor.parallel import GroupPool
    from tb_lossdoctor.readers.logdir import read_logdir

    for i in range(30):
        write_simple(tmp_path / f"run{i:02d}", {"train/loss": decaying(40, noise=0.02, seed=i)})
    with GroupPool(1) as pool:
        series, problems, info = read_logdir(str(tmp_path), reader="server", on_batch=pool.prefetch)
        report = diagnose(series, problems=problems, pool=pool)
        assert pool.workers == 1 and pool.sent == 0
    assert len(report["runs"]) == 30


def test_groups_split_between_worker_tasks_are_diagnosed_whole(tmp_path, monkeypatch):
    """Keras-style runs (`rNN/train` + `rNN/validation`, one group each) read 3 runs per batch
    and handed out 2 runs per task: most task boundaries cut a group in two. Those groups are
    diagnosed again, whole, and the report is the engine's alone."""
    from tb_lossdoctor import parallel
    from tb_lossdoctor.engine import diagnose
    from tb_lossdoctor.readers import provider
    from tb_lossdoctor.readers.logdir import read_logdir

    for i in range(12):
        train = decaying(40, noise=0.02, seed=i)
        val = [v + 0.1 for v in decaying(40, noise=0.02, seed=100 + i)]
        if i % 3 == 0:
            val = val[:20] + [val[19] + 0.03 * k for k in range(1, 21)]
        write_simple(tmp_path / f"r{i:02d}" / "train", {"epoch_loss": train})
        write_simple(tmp_path / f"r{i:02d}" / "validation", {"epoch_loss": val})
    monkeypatch.setattr(provider, "READ_BATCH_RUNS", 3)
    monkeypatch.setattr(parallel, "CHUNK_GROUPS", 2)
    with parallel.GroupPool(1) as pool:
        series, problems, info = read_logdir(str(tmp_path), reader="server", on_batch=pool.prefetch)
        shared = diagnose(series, problems=problems, pool=pool)
        assert 0 < pool.sent < 12  # some groups came whole from a task, the others did not
    alone = diagnose(series, problems=problems)
    for r in (alone, shared):
        r.pop("generated_at")
    assert alone == shared
    assert [r["run"] for r in shared["runs"] if r["verdict"] == "overfitting"]


def test_groups_start_in_workers_while_later_batches_are_read(many_runs):
    """The reader hands each batch of 200 runs but the last to the pool as it arrives (the last
    one is in the caller's hands as soon as the read returns); the report is the one the engine
    gives alone."""
    from tb_lossdoctor.engine import diagnose
    from tb_lossdoctor.parallel import GroupPool
    from tb_lossdoctor.readers.logdir import read_logdir

    batches = []
    with GroupPool(1) as pool:
        def prefetch(batch):
            batches.append(len(batch))
            pool.prefetch(batch)

        series, problems, info = read_logdir(str(many_runs), reader="server", on_batch=prefetch)
        shared = diagnose(series, problems=problems, pool=pool)
        assert pool.sent > 0
    assert batches == [400]  # the first of 2 batches of 200 runs x 2 tags
    alone = diagnose(series, problems=problems)
    for r in (alone, shared):
        r.pop("generated_at")
    assert alone == shared
