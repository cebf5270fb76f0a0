"""One entry point for reading a logdir: the data server first, the Python reader as fallback."""

from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Iterable, List, Optional, Tuple

if TYPE_CHECKING:  # numpy is imported after the data server has started loading
    from tb_lossdoctor.series import Series

READERS = ("auto", "server", "python")
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class LogdirError(ValueError):
    """The logdir cannot be read at all (missing, not a directory, unreadable)."""


def is_url(logdir: str) -> bool:
    return bool(_URL_RE.match(logdir))


def check_logdir(logdir: str) -> None:
    """Raise `LogdirError` with a one-line reason when a local logdir is unusable."""
    if not logdir:
        raise LogdirError("empty logdir path")
    if is_url(logdir):
        return  # gs://, s3://, ...: the readers themselves report what they cannot open
    path = os.path.expanduser(logdir)
    if not os.path.exists(path):
        raise LogdirError(f"logdir does not exist: {logdir}")
    if not os.path.isdir(path):
        folder = os.path.dirname(os.path.abspath(path))
        raise LogdirError(
            f"logdir is a file, not a directory: {logdir}; pass the folder that holds it ({folder})"
        )
    if not os.access(path, os.R_OK | os.X_OK):
        raise LogdirError(f"logdir is not readable: {logdir}")


def read_logdir(
    logdir: str, reader: str = "auto", *, avoid_tensorflow: bool = False, on_batch=None
) -> Tuple[List[Series], List[dict], dict]:
    """Read every scalar series under `logdir`.

    `reader`: "server" (TensorBoard's Rust data server), "python" (TensorBoard's event
    multiplexer) or "auto" (server, falling back to python when the server is unavailable or
    fails on a local logdir; on a remote one the server's failure is raised, see below). s3://
    is read by the Python reader on TensorBoard's own S3 filesystem (`readers.s3`) unless
    reader="server" (which rejects it). Returns (series, problems, info) where info =
    {"reader": used, "seconds": ..., "fallback_reason": why the server was not used, if it was
    not, "python_runs": runs the Python reader re-read because the server returned no points
    for some of their tags, "hparams": the HParams records found, {run: {name: value}}}.
    `avoid_tensorflow`: see `event_files.read_logdir` (the CLI sets it when run as a program).
    `on_batch(series)` is called with each batch the data server returns, as it arrives.
    Raises `LogdirError` for an unusable logdir, and `DataServerError` when reader="server" fails
    or when the server ran and failed on a remote logdir (gs://...) in "auto" mode.
    """
    if reader not in READERS:
        raise ValueError(f"unknown reader {reader!r}; choose one of {', '.join(READERS)}")
    check_logdir(logdir)
    logdir = os.path.expanduser(logdir)
    hparams: dict = {}
    info: dict = {"reader": None, "seconds": None, "hparams": hparams}
    start = time.monotonic()
    from tb_lossdoctor.readers import s3

    if s3.is_s3(logdir) and reader != "server":
        # The data server rejects s3://: TensorBoard reads it only through its TF stub's S3.
        series, problems = s3.read_logdir(logdir, avoid_tensorflow=avoid_tensorflow, hparams_out=hparams)
        info.update(reader="python", seconds=round(time.monotonic() - start, 3))
        return series, problems, info
    if reader in ("auto", "server"):
        from tb_lossdoctor.readers import data_server

        # The filesystem listing runs while the server loads (its process, its core).
        listing = ThreadPoolExecutor(1, thread_name_prefix="lossdoctor-listing")
        files = listing.submit(list_run_files, logdir)
        listing.shutdown(wait=False)  # the one task runs on; nothing else will be submitted
        try:
            series, problems, dropped = data_server.read_logdir(logdir, hparams_out=hparams, on_batch=on_batch)
        except data_server.DataServerError as exc:
            if reader == "server" or (is_url(logdir) and not exc.unavailable):
                # A remote logdir the server tried and failed on (gs:// offline, no
                # credentials...): its reason is the answer; TensorFlow's gfile would only
                # repeat the failure, slowly (its GCS client retries DNS for about a minute).
                raise
            info["fallback_reason"] = str(exc)
        else:
            info.update(reader="server")
            if dropped:
                series, problems = _complete_dropped(
                    logdir, reader, series, problems, dropped, info, avoid_tensorflow
                )
            info["seconds"] = round(time.monotonic() - start, 3)
            return series, problems + scan_problems(logdir, series, problems, record_runs=hparams,
                                                    listing=files.result()), info
    from tb_lossdoctor.readers import event_files

    start = time.monotonic()
    series, problems = event_files.read_logdir(logdir, avoid_tensorflow=avoid_tensorflow, hparams_out=hparams)
    info.update(reader="python", seconds=round(time.monotonic() - start, 3))
    return series, problems + scan_problems(logdir, series, problems, record_runs=hparams), info


MAX_SCAN_PROBLEMS = 50


def list_run_files(logdir: str, max_files: Optional[int] = None) -> List[Tuple[str, List[str]]]:
    """[(run, [what is wrong with its event files])] for every folder of a local logdir holding
    event files: empty files and files that cannot be opened (no parsing). With `max_files`,
    the listing stops after that many event files. Reads only the filesystem, so it can run in
    a thread while a reader loads."""
    if is_url(logdir):
        return []
    top = os.fsencode(logdir)
    out: List[Tuple[str, List[str]]] = []
    seen = set()
    examined = 0
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        if max_files is not None and examined >= max_files:
            break
        identity = _folder_identity(dirpath)
        if identity in seen:  # a symlink loop, or a folder linked twice
            dirnames[:] = []
            continue
        seen.add(identity)
        files = sorted(f for f in filenames if b"tfevents" in f)
        if not files:
            continue
        examined += len(files)
        rel = os.path.relpath(dirpath, top)
        run = "." if rel == b"." else os.fsdecode(rel).replace(os.sep, "/")
        run = run.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        out.append((run, [reason for reason in map(_file_problem, [os.path.join(dirpath, f) for f in files])
                          if reason]))
    return out


def _folder_identity(path: bytes):
    """The folder itself, whatever links lead to it: its device and inode (one `stat`; `realpath`
    costs one per path component, a third of the listing of 12,538 run folders), or its real
    path on a filesystem that reports no inode numbers."""
    try:
        st = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return (st.st_dev, st.st_ino) if st.st_ino else os.path.realpath(path)


def _file_problem(path: bytes) -> Optional[str]:
    shown = os.fsdecode(os.path.basename(path)).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    try:
        with open(path, "rb") as fh:
            first = fh.read(1)  # nothing to read: an empty file (no `stat` needed)
    except OSError as exc:
        return f"cannot read event file {shown}: {exc.strerror or exc}"
    return f"empty event file {shown} (0 bytes)" if not first else None


def scan_problems(
    logdir: str,
    series: List[Series],
    problems: List[dict],
    *,
    include_unread: bool = True,
    max_files: Optional[int] = None,
    record_runs: Iterable[str] = (),
    listing: Optional[List[Tuple[str, List[str]]]] = None,
) -> List[dict]:
    """What the readers skip without a word, found by listing a local logdir (no parsing):
    empty event files, event files that cannot be opened, and (with `include_unread`) run
    folders with event files from which no scalar was read (and that no other problem names).
    `listing` is `list_run_files`' answer when the caller already has it. `record_runs` hold
    HParams records (a Keras `hp.KerasCallback` folder holds nothing else): not unread."""
    if listing is None:
        listing = list_run_files(logdir, max_files)
    read_runs = {s.run for s in series}
    named = {p.get("run") for p in problems if p.get("run")} | set(record_runs)
    out: List[dict] = []
    for run, found in listing:
        if include_unread and run not in read_runs and run not in named and not found:
            found = ["no scalar was read from this run's event files"]
        out.extend({"run": run, "tag": "", "reason": reason} for reason in found)
    if len(out) > MAX_SCAN_PROBLEMS:
        extra = len(out) - MAX_SCAN_PROBLEMS
        out = out[:MAX_SCAN_PROBLEMS] + [{"run": "", "tag": "", "reason": f"... and {extra} more"}]
    return out


def _complete_dropped(logdir, reader, series, problems, dropped, info, avoid_tensorflow):
    """Tags the data server listed without points (float64 scalar tensors, which data server
    0.7 does not convert): in "auto" mode re-read just those runs with the Python reader."""
    reason = "the data server returned no points (scalar tensor dtype it does not read, e.g. float64)"
    if reader == "server":
        return series, problems + [{"run": r, "tag": t, "reason": reason} for r, t in dropped]
    from tb_lossdoctor.readers import event_files

    runs = sorted({r for r, _ in dropped})
    extra, extra_problems = event_files.read_logdir(logdir, runs=runs, avoid_tensorflow=avoid_tensorflow)
    wanted = set(dropped)
    found = [s for s in extra if (s.run, s.tag) in wanted and len(s)]
    missing = wanted - {(s.run, s.tag) for s in found}
    info["python_runs"] = runs
    problems = problems + extra_problems + [
        {"run": r, "tag": t, "reason": "no readable points"} for r, t in sorted(missing)
    ]
    return sorted(series + found, key=lambda s: (s.run, s.tag)), problems
