"""The TensorBoard plugin: a "Diagnosis" tab backed by the same engine as the CLI.

Routes (under `data/plugin/lossdoctor/`, with `--path_prefix` and `/experiment/<id>/` handled by
TensorBoard itself):
- `index.js` and any other file of `tb_lossdoctor/static/`: the frontend bundle;
- `report`: the JSON report of shared/spec/report.md; `?run=<run group>` narrows it to one group.
- `series`: the points of one curve for the tab's charts, `?run=<run>&tag=<tag>`; with
  `&axis_run=<run>&axis_tag=<tag>` (the report's `axis` of a curve counted in another step
  unit), placed on that curve's step axis as the diagnosis placed it.

Imports at module level are limited to TensorBoard's own core modules: an import error here
would take TensorBoard down, so the engine (and numpy) are imported inside the handlers.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import posixpath
import threading
from typing import Tuple

from werkzeug import wrappers

from tensorboard import context as tb_context
from tensorboard import errors as tb_errors
from tensorboard import plugin_util
from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin

logger = logging.getLogger(__name__)

PLUGIN_NAME = "lossdoctor"
TAB_NAME = "Diagnosis"
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

# Query parameters `report` accepts; anything else is a 400.
REPORT_PARAMS = frozenset({"run", "partial"})
# With `partial=1` (the tab), a report still being built after this long is answered with the
# run groups diagnosed so far; the build goes on and the tab asks again. The request that starts
# a build is answered sooner: its first cards are what a user waits for. Later polls wait longer:
# each partial answer costs an assembly of every group diagnosed so far on the build's process
# (0.5-0.9 s at 10,000 runs), and a poll held until the build ends gets the whole report at once
# (a 10,000-run build takes 5-7 s on 2 cores: with 5 s, the poll after the first cards was often
# answered with a partial report just before the build ended).
PARTIAL_AFTER_SECONDS = 10.0
FIRST_PARTIAL_AFTER_SECONDS = 1.0
SERIES_PARAMS = frozenset({"run", "tag"})
AXIS_PARAMS = frozenset({"axis_run", "axis_tag"})
MAX_CHART_POINTS = 20_000
# The logdir listing (for empty or unreadable event files) is redone this often, off the
# request path, and looks at this many event files at most.
FILE_SCAN_SECONDS = 30.0
FILE_SCAN_MAX_FILES = 20_000
MAX_PARAM_LENGTH = 1024
# Report bodies whose entity tag and gzip are remembered (the tab's report, a run's, another
# experiment's); an older one is hashed and compressed again if it is ever served again.
SERVED_BODIES_KEPT = 4

_CONTENT_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".htm": "text/html",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".ico": "image/x-icon",
    ".webp": "image/webp",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".wasm": "application/wasm",
    ".txt": "text/plain",
    ".md": "text/plain",
}


def _json_error(request, message, code):
    return http_util.Respond(request, json.dumps({"error": message}), "application/json", code=code)


def resolve_static_path(root: str, rel: str):
    """The file under `root` that `rel` names, or None when it is missing or outside `root`.

    `rel` is the already-decoded URL path below the plugin route. Rejected outright: empty
    names, absolute paths, backslashes, NUL, drive letters, `.`/`..` segments and hidden files;
    what remains is resolved (symlinks included) and must still lie inside `root`.
    """
    if not rel or len(rel) > 512:
        return None
    if "\\" in rel or "\x00" in rel or ":" in rel or rel.startswith("/"):
        return None
    parts = rel.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    if posixpath.isabs(rel) or os.path.isabs(rel):
        return None
    try:
        real_root = os.path.realpath(root)
        target = os.path.realpath(os.path.join(real_root, *parts))
    except (OSError, ValueError):
        return None
    if os.path.commonpath([real_root, target]) != real_root or target == real_root:
        return None
    if not os.path.isfile(target):
        return None
    return target


class LogdirScan:
    """Names the empty or unreadable event files of a local logdir, which the data provider skips
    without a word. A daemon thread rescans every `FILE_SCAN_SECONDS`, looking at no more than
    `FILE_SCAN_MAX_FILES` event files; requests read its latest result and never wait for it.
    Remote logdirs (`gs://`, `s3://`...) are never listed: there the provider is the only window.
    """

    def __init__(self, logdir):
        self._logdir = logdir if logdir and "://" not in logdir and os.path.isdir(logdir) else None
        self._problems = []
        self._started = False
        self._lock = threading.Lock()
        self.scans = 0  # completed scans (tests wait for the first)

    def problems(self):
        with self._lock:
            if self._logdir and not self._started:
                self._started = True
                threading.Thread(target=self._loop, name="lossdoctor-logdir-scan", daemon=True).start()
            return list(self._problems)

    def _loop(self):
        import time

        from tb_lossdoctor.readers.logdir import scan_problems

        while True:
            try:
                found = scan_problems(self._logdir, [], [], include_unread=False, max_files=FILE_SCAN_MAX_FILES)
            except Exception:  # a listing failure must never cost the report
                logger.warning("lossdoctor: scanning the logdir failed", exc_info=True)
                found = []
            with self._lock:
                self._problems = found
                self.scans += 1
            time.sleep(FILE_SCAN_SECONDS)


class LossDoctorPlugin(base_plugin.TBPlugin):
    """Diagnoses every scalar curve of the experiment and shows the verdicts."""

    plugin_name = PLUGIN_NAME

    def __init__(self, context):
        self._context = context
        self._data_provider = getattr(context, "data_provider", None)
        self._sampling_hints = getattr(context, "sampling_hints", None)
        self._cache = None  # built on first use (imports the engine)
        self._cache_lock = threading.Lock()
        self._served = []  # [(body, etag, gzipped body)] of the last reports served, newest first
        self._static_dir = STATIC_DIR
        self._file_scan = LogdirScan(getattr(context, "logdir", None))

    # -- TensorBoard hooks ------------------------------------------------------------------

    def get_plugin_apps(self):
        return {
            "/index.js": self._serve_static,
            "/report": self._serve_report,
            "/series": self._serve_series,
            "/*": self._serve_static,
        }

    def is_active(self):
        # Activation comes from `data_plugin_names`: TensorBoard turns the tab on when the
        # experiment has scalars, without calling this (it runs on every plugins listing).
        return False

    def data_plugin_names(self):
        return ("scalars",)

    def frontend_metadata(self):
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name=TAB_NAME)

    # -- static files -----------------------------------------------------------------------

    @wrappers.Request.application
    def _serve_static(self, request):
        try:
            path = request.path
            marker = "/plugin/%s/" % PLUGIN_NAME
            idx = path.find(marker)
            rel = path[idx + len(marker):] if idx >= 0 else ""
            target = resolve_static_path(self._static_dir, rel)
            if target is None:
                return _json_error(request, "not found", 404)
            ext = os.path.splitext(target)[1].lower()
            content_type = _CONTENT_TYPES.get(ext, "application/octet-stream")
            with open(target, "rb") as f:
                content = f.read()
            return http_util.Respond(request, content, content_type)
        except Exception:  # nothing gives a 500
            logger.error("lossdoctor: serving a static file failed", exc_info=True)
            return _json_error(request, "not found", 404)

    # -- the report -------------------------------------------------------------------------

    def _get_cache(self):
        with self._cache_lock:
            if self._cache is None:
                from tb_lossdoctor.report_cache import ReportCache

                self._cache = ReportCache()
            return self._cache

    @wrappers.Request.application
    def _serve_report(self, request):
        args = request.args
        unknown = sorted(set(args.keys()) - REPORT_PARAMS)
        if unknown:
            return _json_error(request, "unknown query parameter: %s" % ", ".join(unknown)[:200], 400)
        run = None
        if "run" in args:
            values = args.getlist("run")
            if len(values) != 1:
                return _json_error(request, "give `run` at most once", 400)
            run = values[0]
            if not run or len(run) > MAX_PARAM_LENGTH or "\x00" in run or not run.isprintable():
                return _json_error(request, "`run` must name a run group", 400)
        partial = args.getlist("partial")
        if partial not in ([], ["1"]):
            return _json_error(request, "`partial` takes the value 1, once", 400)
        if self._data_provider is None:
            return _json_error(request, "this TensorBoard has no data provider", 503)
        try:
            from tb_lossdoctor import report_cache

            cache = self._get_cache()
            ctx = tb_context.from_environ(request.environ)
            eid = plugin_util.experiment_id(request.environ)
            body = cache.report_json(
                self._data_provider,
                ctx,
                eid,
                run=run,
                sample_limit=report_cache.sample_limit_from_hints(self._sampling_hints),
                file_problems=self._file_scan.problems(),
                partial_after=(FIRST_PARTIAL_AFTER_SECONDS, PARTIAL_AFTER_SECONDS) if partial else None,
            )
        except tb_errors.PublicError as exc:  # messages written for users (404, 503)
            return _json_error(request, str(exc), exc.http_code)
        except Exception:  # a bug: the details go to the log, never into the response
            logger.error("lossdoctor: building the report failed", exc_info=True)
            return _json_error(request, "the report could not be built (TensorBoard's log has the details)", 503)
        # A poll that finds nothing new gets "304 Not Modified" and no body, not the whole report.
        etag, gzipped = self._encoded(body)
        if etag in request.headers.get("If-None-Match", ""):
            return http_util.Respond(request, "", "application/json", code=304, headers=[("ETag", etag)])
        # Compressed once per body, not per request (TensorBoard unpacks it for a client that
        # does not accept gzip).
        return http_util.Respond(request, gzipped, "application/json", content_encoding="gzip",
                                 headers=[("ETag", etag)])

    def _encoded(self, body: str) -> Tuple[str, bytes]:
        """The report's entity tag (its digest) and its gzip, remembered for the last bodies
        served: the same body object comes back from the cache until the data changes. Few are
        kept, each being the whole report (13 MB at 10,000 runs)."""
        with self._cache_lock:
            for known, etag, gzipped in self._served:
                if known is body:
                    return etag, gzipped
        data = body.encode("utf-8")
        etag = '"%s"' % hashlib.sha1(data).hexdigest()[:24]
        # As TensorBoard compresses its own answers: level 3, no timestamp (the same bytes each time).
        gzipped = gzip.compress(data, compresslevel=3, mtime=0)
        with self._cache_lock:
            self._served = [(body, etag, gzipped)] + self._served[:SERVED_BODIES_KEPT - 1]
        return etag, gzipped

    # -- one curve's points, for the charts ----------------------------------------------------

    @wrappers.Request.application
    def _serve_series(self, request):
        args = request.args
        keys = set(args.keys())
        if keys not in (SERIES_PARAMS, SERIES_PARAMS | AXIS_PARAMS) or any(len(args.getlist(k)) != 1 for k in keys):
            return _json_error(request, "give exactly one `run` and one `tag` (and at most one `axis_run` with one `axis_tag`)", 400)
        run, tag = args["run"], args["tag"]
        axis = (args["axis_run"], args["axis_tag"]) if AXIS_PARAMS <= keys else None
        if any(len(x) > MAX_PARAM_LENGTH or "\x00" in x for x in (run, tag) + (axis or ())):
            return _json_error(request, "`run` or `tag` is too long or malformed", 400)
        if self._data_provider is None:
            return _json_error(request, "this TensorBoard has no data provider", 503)
        try:
            from tb_lossdoctor.chart_data import chart_points
            from tb_lossdoctor.readers.provider import read_series

            ctx = tb_context.from_environ(request.environ)
            eid = plugin_util.experiment_id(request.environ)
            runs, tags = [run] + ([axis[0]] if axis else []), [tag] + ([axis[1]] if axis else [])
            found, _ = read_series(self._data_provider, ctx, eid, runs=runs, tags=tags)
            match = [s for s in found if s.run == run and s.tag == tag]
            if not match:
                return _json_error(request, "no scalar series %r in run %r" % (tag, run), 404)
            series = match[0]
            reference = [s for s in found if axis and (s.run, s.tag) == axis]
            if reference:
                from tb_lossdoctor.step_units import on_axis_of

                series = on_axis_of(reference[0], series) or series
            body = json.dumps(chart_points(series, MAX_CHART_POINTS), allow_nan=False)
        except tb_errors.PublicError as exc:
            return _json_error(request, str(exc), exc.http_code)
        except Exception:
            logger.error("lossdoctor: reading a series failed", exc_info=True)
            return _json_error(request, "the series could not be read (TensorBoard's log has the details)", 503)
        return http_util.Respond(request, body, "application/json")
