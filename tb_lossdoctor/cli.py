"""`lossdoctor LOGDIR`: diagnose the training curves of a TensorBoard logdir.

Exit codes (shared/spec/report.md): 0 no finding reaches --fail-on, 1 one does, 2 usage or
input error (message on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import List, Mapping, Optional

from tb_lossdoctor.report import SEVERITY_RANK

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse exits 2 already; keep its one-line style
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"lossdoctor: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="lossdoctor",
        description="Diagnose training loss curves in a TensorBoard logdir "
        "(overfitting, NaN, divergence, learning-rate problems, ...).",
    )
    p.add_argument("--version", action="version", version=version_text(),
                   help="show the version of lossdoctor and of TensorBoard, then exit")
    p.add_argument("logdir", help="TensorBoard log directory: a local folder, gs://BUCKET/PREFIX "
                   "or s3://BUCKET[/PREFIX]")
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text",
                   help="output format (default: text)")
    p.add_argument("--fail-on", choices=("warning", "error"), default=None,
                   help="exit 1 when a finding reaches this severity (default: never fail)")
    p.add_argument("--run", metavar="REGEX", default=None,
                   help="only run groups whose name matches this regular expression (re.search)")
    p.add_argument("--reader", choices=("auto", "server", "python"), default="auto",
                   help="auto: TensorBoard's data server, falling back to the Python reader for a "
                   "local logdir; s3:// is always read by TensorBoard's Python reader")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="processes that diagnose run groups (default: one per available core, "
                   "up to 5; only logdirs of hundreds of runs are split)")
    return p


def _fail(message: str) -> int:
    from tb_lossdoctor.formatting import clean  # run names in it are user data: no escapes

    message = clean(" ".join(str(message).split()))  # one line, whatever the reader's error looked like
    print(f"lossdoctor: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def version_text() -> str:
    """"lossdoctor 0.1.0 (tensorboard 2.21.0)", from the installed packages' metadata."""
    from importlib import metadata

    def installed(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    return f"lossdoctor {installed('tb-lossdoctor')} (tensorboard {installed('tensorboard')})"


def use_color(stream, environ: Optional[Mapping[str, str]] = None) -> bool:
    """Colour on a terminal, following no-color.org and force-color.org: a non-empty NO_COLOR
    turns it off (and wins), a non-empty FORCE_COLOR turns it on even when piped ("0" or
    "false" turn it off, as in Node), TERM=dumb turns it off."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    force = env.get("FORCE_COLOR")
    if force:
        return force.strip().lower() not in ("0", "false")
    if env.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def main(argv: Optional[List[str]] = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    if words[:1] == ["watch"]:  # `lossdoctor watch LOGDIR` (a logdir named "watch": ./watch)
        from tb_lossdoctor import watch

        if argv is None:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        return watch.main(words[1:], avoid_tensorflow=argv is None)
    args = build_parser().parse_args(argv)
    # TensorFlow is imported only by the Python reader on remote logdirs; keep its C++ logging
    # off our stderr unless the user set a level (TF 2.21 still prints two start-up lines).
    if argv is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        run_re = re.compile(args.run) if args.run is not None else None
    except re.error as exc:
        return _fail(f"invalid --run regular expression {args.run!r}: {exc}")

    if args.jobs is not None and args.jobs < 1:
        return _fail(f"--jobs must be at least 1, not {args.jobs}")
    from tb_lossdoctor.parallel import GroupPool

    # Forked now, before the reader starts gRPC's threads. In-process callers (argv given) keep
    # their process to themselves unless they ask for --jobs.
    workers = None if args.jobs is None and argv is None else (args.jobs or 1) - 1
    with GroupPool(workers) as pool:
        code = _diagnose_and_print(args, argv, run_re, pool)
    if argv is None:
        _keep_until_exit()  # the interpreter's teardown then skips them too
    return code


def _ignored_text(report: dict, shown: int = 5) -> str:
    """What the logdir holds instead, so the user sees why nothing was recognised."""
    from tb_lossdoctor.formatting import ignored_names

    count = report.get("ignored_count", 0)
    if not count:
        return ""
    more = f" and {count - shown} more" if count > shown else ""
    return f"; its {count} scalar curve(s) are not learning curves: {ignored_names(report, shown)}{more}"


def _keep_until_exit() -> None:
    """Tell the garbage collector that everything alive now lives until the process exits
    (command-line processes only: this is process-wide). Modules, the series read, the report:
    every full collection walked all of them again and found nothing (0.26 s of a 2 s run at
    3,000 runs, 0.9 s at 10,000); it now walks only what was made since."""
    import gc

    gc.freeze()


def _diagnose_and_print(args, argv, run_re, pool) -> int:
    # Only the readers before reading: the data server starts loading first, and numpy and
    # TensorBoard's gRPC client are imported while it loads (the engine once it has read).
    from tb_lossdoctor.readers.data_server import DataServerError
    from tb_lossdoctor.readers.logdir import LogdirError, read_logdir

    try:
        # As a program (argv from the command line) the Python reader may skip importing
        # TensorFlow; an in-process caller passing argv keeps its TensorBoard state untouched.
        # Run groups start being diagnosed by the workers while later batches are read.
        prefetch = pool.workers and run_re is None

        def on_batch(batch) -> None:
            if prefetch:
                pool.prefetch(batch)
            if argv is None:
                _keep_until_exit()  # the series read so far

        series, problems, info = read_logdir(args.logdir, args.reader, avoid_tensorflow=argv is None,
                                             on_batch=on_batch if prefetch or argv is None else None)
    except LogdirError as exc:
        return _fail(str(exc))
    except DataServerError as exc:
        if args.reader == "server":
            return _fail(f"--reader server failed on {args.logdir}: {exc}")
        return _fail(f"cannot read {args.logdir}: {exc}")  # a remote logdir the server failed on
    except Exception as exc:  # a reader bug or an unreadable remote path: no traceback
        return _fail(f"cannot read {args.logdir}: {type(exc).__name__}: {exc}")
    if not series:
        return _fail(f"no scalar data found in {args.logdir}")
    if argv is None:
        _keep_until_exit()  # the series (the report refers to them until it is printed), modules
    from tb_lossdoctor import formatting, markdown_view
    from tb_lossdoctor.engine import diagnose
    from tb_lossdoctor.report import dumps_lines

    if run_re is not None:  # filter before diagnosing: the other groups' work is not needed
        from tb_lossdoctor.grouping import group_key, run_tags

        tags = run_tags(series)
        series = [s for s in series if run_re.search(group_key(s.run, tags[s.run]))]
        problems = [p for p in problems
                    if not p.get("run") or run_re.search(group_key(p["run"], tags.get(p["run"], ())))]
        if not series:
            return _fail(f"no run group matches --run {args.run!r}")
    report = diagnose(series, problems=problems, hparams=info.get("hparams"), pool=pool)
    if not any(run.get("series") for run in report.get("runs", [])):
        if run_re is not None:
            return _fail(f"no run group matching --run {args.run!r} has a recognised training metric")
        return _fail(f"no recognised training metrics (loss, accuracy, ...) in {args.logdir}"
                     + _ignored_text(report))

    if args.format == "json":
        text = dumps_lines(report) + "\n"
    elif args.format == "markdown":
        text = markdown_view.render_markdown(report, info=info)
    else:
        text = formatting.render_text(report, color=use_color(sys.stdout), info={**info, "logdir": args.logdir})
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `lossdoctor ... | head`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass

    if args.fail_on is not None:
        threshold = SEVERITY_RANK[args.fail_on]
        for run in report["runs"]:
            if any(SEVERITY_RANK.get(f.get("severity"), 0) >= threshold for f in run.get("findings", [])):
                return EXIT_FAIL
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
