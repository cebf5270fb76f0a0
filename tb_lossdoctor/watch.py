"""`lossdoctor watch LOGDIR`: follow a live logdir and print each change of a run's verdict.

    lossdoctor watch runs/ --until error || kill $TRAIN_PID

Reading goes through TensorBoard's own machinery, kept open between polls: its data server in
reload mode (it rereads new points, runs and event files by itself), or its Python
`EventMultiplexer`, reloaded at each poll. Each poll asks for the report through the plugin's
`ReportCache` (only run groups with new data are read and diagnosed again), and the verdicts go
through `live.VerdictTracker` (a new verdict must hold on three updates with new data; events show
at once). Exit codes: 0 (Ctrl-C, with a summary), 1 (`--until` reached), 2 (usage or input error).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
from typing import Iterator, List, Optional

from tb_lossdoctor.live import DEFAULT_CONFIRM, Change, VerdictTracker, reaches

EXIT_OK, EXIT_UNTIL, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lossdoctor watch",
        description="Follow a live TensorBoard logdir and print each change of a run's verdict.",
    )
    p.add_argument("logdir", help="TensorBoard log directory being written")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between polls (default: 10)")
    p.add_argument("--until", choices=("warning", "error"), default=None,
                   help="exit 1 the first time a finding of this severity is shown")
    p.add_argument("--run", metavar="REGEX", default=None, help="only run groups whose name matches")
    p.add_argument("--format", choices=("text", "jsonl"), default="text",
                   help="text: one line per change; jsonl: one JSON object per change")
    p.add_argument("--reader", choices=("auto", "server", "python"), default="auto",
                   help="auto: TensorBoard's data server, else its Python reader")
    p.add_argument("--confirm", type=int, default=DEFAULT_CONFIRM,
                   help="updates with new data a new verdict must hold on before it is shown (default: 3)")
    p.add_argument("--polls", type=int, default=None, help=argparse.SUPPRESS)  # tests: stop after N polls
    return p


@contextlib.contextmanager
def follow(logdir: str, reader: str, interval: float, avoid_tensorflow: bool = False) -> Iterator["Follower"]:
    """A provider over the live logdir, and a `refresh()` to call before each poll.
    `avoid_tensorflow` (command-line processes only) reads with TensorBoard's TF stub."""
    if reader in ("auto", "server"):
        from tb_lossdoctor.readers import data_server

        try:
            server = data_server.DataServer(logdir, reload_seconds=max(1.0, interval / 2))
            server.__enter__()
        except data_server.DataServerError:
            if reader == "server":
                raise
        else:
            try:
                yield Follower(server.provider, lambda: None, "server")
            finally:
                server.close()
            return
    if avoid_tensorflow:
        from tb_lossdoctor.readers.event_files import _prefer_tensorboard_stub

        _prefer_tensorboard_stub(logdir)
    yield _python_follower(logdir)


class Follower:
    def __init__(self, provider, refresh, reader: str):
        self.provider = provider
        self.refresh = refresh
        self.reader = reader


def _python_follower(logdir: str) -> Follower:
    from tensorboard.backend.event_processing import data_provider as tb_data_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer

    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={"scalars": 0})

    def refresh() -> None:
        multiplexer.AddRunsFromDirectory(logdir)  # new runs appear between polls
        multiplexer.Reload()

    return Follower(tb_data_provider.MultiplexerDataProvider(multiplexer, logdir), refresh, "python")


def change_line(change: Change) -> str:
    """"12:03:41 resnet_lr0.1  still_learning -> overfitting: <summary>; <first advice>"."""
    from tb_lossdoctor.formatting import clean

    if change.first_seen:
        head = f"{change.after or 'died'}"
    elif change.before != change.after:
        head = f"{change.before or 'died'} -> {change.after or 'died'}"
    else:
        head = f"{change.after or 'died'}"
    if change.new_events:
        head += " + " + ", ".join(change.new_events)
    line = f"{change.time} {clean(change.run)}  {head}"
    f = change.finding
    if f:
        line += f": {clean(f.get('summary') or f.get('title', ''))}"
        advice = f.get("advice") or []
        if advice and f.get("severity") in ("warning", "error"):
            line += f" -> {clean(advice[0])}"
    return line


def main(argv: Optional[List[str]] = None, *, avoid_tensorflow: bool = False) -> int:
    args = build_parser().parse_args(argv)
    if args.interval <= 0:
        return _fail("--interval must be positive")
    try:
        run_re = re.compile(args.run) if args.run is not None else None
    except re.error as exc:
        return _fail(f"invalid --run regular expression {args.run!r}: {exc}")
    from tb_lossdoctor.readers.data_server import DataServerError
    from tb_lossdoctor.readers.logdir import LogdirError, check_logdir

    try:
        check_logdir(args.logdir)
        with follow(args.logdir, args.reader, args.interval, avoid_tensorflow) as follower:
            return _loop(follower, args, run_re)
    except (LogdirError, DataServerError) as exc:
        return _fail(str(exc))


def _loop(follower: Follower, args, run_re) -> int:
    from tensorboard import context as tb_context

    from tb_lossdoctor.report_cache import ReportCache, ReportUnavailable

    cache, tracker = ReportCache(max_groups=1_000_000), VerdictTracker(args.confirm)
    ctx = tb_context.RequestContext()
    shown: List[dict] = []
    started, polls, changes_seen = time.monotonic(), 0, 0
    try:
        while args.polls is None or polls < args.polls:
            polls += 1
            follower.refresh()
            try:
                report = json.loads(cache.report_json(follower.provider, ctx, "", sample_limit=None))
            except ReportUnavailable:
                report = {"runs": []}  # nothing readable yet: a run that has just started
            runs = [r for r in report["runs"] if run_re is None or run_re.search(r["run"])]
            shown, changes = tracker.update(runs)
            for change in changes:
                changes_seen += 1
                _print_change(change, args.format)
            hit = [c for c in changes if reaches(c.severity, args.until)]
            if hit:
                _say(f"lossdoctor watch: {hit[0].run} reached {args.until} ({hit[0].severity})", args.format)
                return EXIT_UNTIL
            time.sleep(args.interval)
    except KeyboardInterrupt:
        pass
    _summary(shown, time.monotonic() - started, changes_seen, follower.reader, args.format)
    return EXIT_OK


def _print_change(change: Change, fmt: str) -> None:
    if fmt == "jsonl":
        from tb_lossdoctor.report import dumps

        print(dumps(change.to_dict()), flush=True)
    else:
        print(change_line(change), flush=True)


def _say(message: str, fmt: str) -> None:
    print(message, file=sys.stderr if fmt == "jsonl" else sys.stdout, flush=True)


def _summary(runs: List[dict], seconds: float, changes: int, reader: str, fmt: str) -> None:
    counts = {s: sum(r.get("status") == s for r in runs) for s in ("error", "warning", "ok")}
    _say(f"lossdoctor watch: {len(runs)} run group(s) followed for {seconds:.0f} s with the "
         f"{'data server' if reader == 'server' else 'Python reader'}: {counts['error']} error, "
         f"{counts['warning']} warning, {counts['ok']} ok; {changes} change(s) printed", fmt)


def _fail(message: str) -> int:
    print(f"lossdoctor watch: error: {' '.join(str(message).split())}", file=sys.stderr)
    return EXIT_USAGE
