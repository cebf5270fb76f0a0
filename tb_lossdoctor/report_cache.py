"""Build the plugin's report from a TensorBoard data provider, diagnosing only what changed.

The provider's `list_scalars` is cheap and tells, per (run, tag), the last step and wall time it
holds. Each run group's diagnosis is cached under the tuple of those values for the group's series,
so a request that finds no new data recomputes nothing, and new data re-reads and re-diagnoses
only the groups it touched (one `read_scalars` call for all of them). Assembled reports are cached
too, so concurrent identical requests get byte-identical bodies.

TensorBoard serves requests from threads. One lock guards the caches' dictionaries and is held
only to look up or store; reading and diagnosing happen outside it. One build runs per report
key at a time (a request for a key being built waits for that build and gets its body), and a
request whose report is already cached never waits.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import Dict, List, Optional, Sequence, Tuple

from tensorboard import errors as tb_errors

from tb_lossdoctor import report as report_mod
from tb_lossdoctor.grouping import group_key
from tb_lossdoctor.readers import hparams_records
from tb_lossdoctor.readers import provider as provider_reader

logger = logging.getLogger(__name__)

# TensorBoard keeps this many points per scalar tag unless `--samples_per_plugin scalars=N`.
DEFAULT_SCALAR_SAMPLES = 1000
SAMPLING_HINT = "Run tensorboard with --samples_per_plugin scalars=0 to diagnose every point"

class ReportUnavailable(tb_errors.PublicError):
    """Nothing could be read at all (HTTP 503). Its message is written for users: the
    underlying error goes to TensorBoard's log, never into a response."""

    http_code = 503


class UnknownRunGroup(tb_errors.NotFoundError):
    """The `run=` filter names no run group of the experiment (HTTP 404)."""

    def __init__(self, run: str):
        super().__init__(f"no run group named {run!r}")


def sample_limit_from_hints(sampling_hints) -> Optional[int]:
    """The per-tag point budget of scalars (None when every point is kept)."""
    hint = None
    try:
        hint = (sampling_hints or {}).get(provider_reader.SCALARS_PLUGIN)
    except AttributeError:
        hint = None
    if hint is None:
        return DEFAULT_SCALAR_SAMPLES
    try:
        hint = int(hint)
    except (TypeError, ValueError):
        return DEFAULT_SCALAR_SAMPLES
    return hint if hint > 0 else None


class _LRU:
    def __init__(self, size: int):
        self.size = max(1, int(size))
        self._data: "collections.OrderedDict" = collections.OrderedDict()

    def get(self, key):
        try:
            value = self._data[key]
        except KeyError:
            return None
        self._data.move_to_end(key)
        return value

    def put(self, key, value):
        if key not in self._data:  # evict first: the size is never exceeded, even for a moment
            while len(self._data) >= self.size:
                self._data.popitem(last=False)
        self._data[key] = value
        self._data.move_to_end(key)

    def __len__(self):
        return len(self._data)

    def clear(self):
        self._data.clear()


class _GroupResult:
    """One run group's part of a report: the engine's report minus version and generated_at."""

    __slots__ = ("parts",)

    def __init__(self, parts: dict):
        self.parts = parts


_OWN_FIELDS = ("version", "generated_at", "sampling")


def merge_reports(parts: List[dict], skeleton: dict) -> dict:
    """Merge per-group reports into one: runs re-ordered, lists concatenated, counts added,
    flags or-ed.

    `skeleton` (the engine's report on nothing) gives every top-level field a value even when
    there are no groups; fields the engine adds later are merged by the same rules.
    """
    out = {k: v for k, v in skeleton.items() if k not in _OWN_FIELDS}
    seen = set()
    for part in parts:
        for k, v in part.items():
            if k in _OWN_FIELDS:
                continue
            if k not in seen:
                seen.add(k)
                out[k] = list(v) if isinstance(v, list) else v
            elif isinstance(v, list) and isinstance(out.get(k), list):
                out[k].extend(v)
            elif isinstance(v, bool) and isinstance(out.get(k), bool):
                out[k] = out[k] or v
            elif isinstance(v, int) and isinstance(out.get(k), int):  # counts add up
                out[k] += v
    out["runs"] = report_mod.order_runs(list(out.get("runs", [])))
    if isinstance(out.get("ignored"), list):
        from tb_lossdoctor.engine import MAX_IGNORED_LISTED

        out["ignored"] = out["ignored"][:MAX_IGNORED_LISTED]
    out.setdefault("problems", [])
    out["sampled"] = bool(out.get("sampled", False))
    return out


class _Build:
    """A report being built by one thread; others asking for the same key wait on it."""

    __slots__ = ("done", "body", "error", "progress")

    def __init__(self):
        self.done = threading.Event()
        self.body: Optional[str] = None
        self.error: Optional[BaseException] = None
        self.progress: Dict[str, "_GroupResult"] = {}  # groups diagnosed so far (under the lock)


class ReportCache:
    """Per-group diagnosis cache plus assembled-report cache, both LRU-bounded and thread-safe."""

    def __init__(self, settings=None, *, max_groups: int = 1_000_000, max_reports: int = 64):
        self.settings = settings
        self._lock = threading.Lock()
        self._groups = _LRU(max_groups)  # (eid, group) -> (data_key, _GroupResult)
        self._reports = _LRU(max_reports)  # (eid, run filter, full key) -> JSON text
        self._building: Dict[tuple, _Build] = {}
        self.diagnosed_groups = 0  # counters, for logs and tests
        self.reads = 0

    def clear(self):
        with self._lock:
            self._groups.clear()
            self._reports.clear()

    def sizes(self) -> Tuple[int, int]:
        """(cached groups, cached reports), read under the lock."""
        with self._lock:
            return len(self._groups), len(self._reports)

    # -- public entry point -------------------------------------------------------------------

    def report_json(
        self,
        provider,
        ctx,
        experiment_id: str,
        *,
        run: Optional[str] = None,
        sample_limit: Optional[int] = DEFAULT_SCALAR_SAMPLES,
        file_problems: Sequence[dict] = (),
        partial_after: Optional[float] = None,
    ) -> str:
        """The report as JSON text. Raises `UnknownRunGroup` or `ReportUnavailable`.

        `file_problems` are what the logdir's listing showed to be unusable (empty or unreadable
        event files); the data provider skips those silently, so the plugin passes them in.
        With `partial_after` (seconds), a report still being built after that long is answered
        with the run groups diagnosed so far and a `pending` count (never cached); the build
        goes on in the background and a later request gets the whole report.
        """
        try:
            listing = provider_reader.list_scalar_tags(provider, ctx, experiment_id) or {}
        except Exception as exc:  # the provider is unreachable or the experiment is unreadable
            logger.warning("lossdoctor: list_scalars failed: %s", exc, exc_info=True)
            raise ReportUnavailable(
                "could not list the experiment's scalars (TensorBoard's log says why)"
            ) from exc

        groups = _group_listing(listing)
        if run is not None:
            if run not in groups:
                raise UnknownRunGroup(run)
            groups = {run: groups[run]}
            file_problems = [p for p in file_problems if p.get("run") == run]
        file_key = tuple((p.get("run"), p.get("reason")) for p in file_problems)
        hparams = hparams_records.read_hparams(provider, ctx, experiment_id)  # for the sweep
        full_key = (experiment_id, run, sample_limit, file_key, hparams_records.freeze(hparams),
                    tuple(sorted((g, k) for g, (k, _) in groups.items())))

        while True:
            with self._lock:
                body = self._reports.get(full_key)
                if body is not None:
                    return body
                build = self._building.get(full_key)
                mine = build is None
                if mine:
                    build = self._building[full_key] = _Build()
            args = (build, full_key, provider, ctx, experiment_id, groups, sample_limit, file_problems, hparams)
            if mine and partial_after is None:
                return self._build_report(*args)
            if mine:
                threading.Thread(target=self._build_in_background, args=args, daemon=True,
                                 name="lossdoctor-report").start()
            if not build.done.wait(partial_after):
                return self._partial(build, groups, sample_limit)
            if build.error is not None:
                raise build.error
            if build.body is not None:
                return build.body

    def _build_in_background(self, *args) -> None:
        try:
            self._build_report(*args)
        except BaseException:  # kept in the build for the requests waiting on it
            logger.debug("lossdoctor: background report build failed", exc_info=True)

    def _partial(self, build: _Build, groups: dict, sample_limit) -> str:
        """The groups diagnosed so far, worst first, and how many are still pending."""
        with self._lock:
            progress = dict(build.progress)
        report = self._assemble([progress[name].parts for name in sorted(progress)], sample_limit)
        pending = sorted(set(groups) - set(progress))
        report["pending"] = {"count": len(pending), "runs": pending[:1000]}
        report["sweep"] = None  # across runs: once every run is diagnosed
        return report_mod.dumps(report)

    def _build_report(self, build, full_key, provider, ctx, eid, groups, sample_limit, file_problems,
                      hparams=None) -> str:
        """Build one report outside the lock; publish it to the waiters and the cache."""
        cacheable = False
        try:
            report, cacheable = self._build(provider, ctx, eid, groups, sample_limit, build)
            from tb_lossdoctor.engine import add_sweep

            report = add_sweep(report, hparams)  # across the groups diagnosed one by one
            if file_problems:
                report["problems"] = list(report.get("problems", [])) + list(file_problems)
            body = report_mod.dumps(report)
            build.body = body
            return body
        except BaseException as exc:
            build.error = exc
            raise
        finally:
            with self._lock:
                if cacheable and build.body is not None:
                    self._reports.put(full_key, build.body)
                del self._building[full_key]
            build.done.set()

    # -- building -----------------------------------------------------------------------------

    def _build(self, provider, ctx, eid, groups, sample_limit, build: Optional[_Build] = None) -> Tuple[dict, bool]:
        results: Dict[str, _GroupResult] = {}
        stale: Dict[str, dict] = {}
        previous: Dict[str, _GroupResult] = {}
        with self._lock:
            cached_groups = {name: self._groups.get((eid, name)) for name in groups}
        for name, (key, members) in groups.items():
            cached = cached_groups[name]
            if cached is not None and cached[0] == key:
                results[name] = cached[1]
            else:
                stale[name] = members
                if cached is not None:
                    previous[name] = cached[1]
        if build is not None:
            with self._lock:
                build.progress.update(results)

        extra_problems: List[dict] = []
        cacheable = True
        # Read and diagnose the stale groups a batch at a time: memory holds one batch's points,
        # never the whole logdir's, and every result is kept (the cache is sized to the logdir).
        for batch in _batches(sorted(stale), stale, provider_reader.READ_BATCH_RUNS):
            members = {name: stale[name] for name in batch}
            try:
                series, problems = self._read(provider, ctx, eid, members, sample_limit)
            except Exception as exc:
                logger.warning("lossdoctor: read_scalars failed: %s", exc, exc_info=True)
                cacheable = False
                for name in batch:
                    if name in previous:
                        results[name] = previous[name]
                        reason = "could not re-read new data; showing the previous diagnosis"
                    else:
                        reason = "could not read this run group (TensorBoard's log says why)"
                    extra_problems.append({"run": name, "tag": None, "reason": reason})
                continue
            for name, (group_series, group_problems) in _split_by_group(members, series, problems).items():
                result = self._diagnose_group(name, group_series, group_problems)
                results[name] = result
                with self._lock:
                    self._groups.put((eid, name), (groups[name][0], result))
                    if build is not None:
                        build.progress[name] = result
            del series
        if stale and not results:
            raise ReportUnavailable("could not read the experiment's scalars (TensorBoard's log says why)")

        names = [r["run"] for name in sorted(results) for r in results[name].parts.get("runs", [])]
        if len(names) != len(set(names)):
            # Our grouping split what the engine joins: diagnose those groups together instead.
            logger.warning("lossdoctor: run grouping disagrees with the engine; diagnosing together")
            return self._build_together(provider, ctx, eid, groups, sample_limit), True

        parts = [results[name].parts for name in sorted(results)]
        if extra_problems:
            parts.append({"problems": extra_problems})
        return self._assemble(parts, sample_limit), cacheable

    def _read(self, provider, ctx, eid, stale, sample_limit):
        runs = sorted({r for members in stale.values() for r in members})
        tags = sorted({t for members in stale.values() for tags in members.values() for t in tags})
        with self._lock:
            self.reads += 1
        return provider_reader.read_series(
            provider, ctx, eid, runs=runs, tags=tags, sample_limit=sample_limit
        )

    def _diagnose_group(self, name, series, problems) -> _GroupResult:
        with self._lock:
            self.diagnosed_groups += 1
        try:
            return _GroupResult(self._diagnose(series, problems))
        except Exception:  # one broken group must not take the report down
            logger.error("lossdoctor: diagnosing run group %r failed", name, exc_info=True)
            failure = {"run": name, "tag": None, "reason": "diagnosis failed (TensorBoard's log has the details)"}
            return _GroupResult({
                "runs": [],
                "problems": list(problems) + [failure],
                "sampled": any(s.sampled for s in series),
            })

    def _diagnose(self, series, problems) -> dict:
        from tb_lossdoctor import engine

        rep = engine.diagnose(series, self.settings, problems=list(problems))
        report_mod.dumps(rep)  # must be valid JSON on its own
        rep = {k: v for k, v in rep.items() if k not in _OWN_FIELDS}
        rep.setdefault("sampled", any(s.sampled for s in series))
        return rep

    def _build_together(self, provider, ctx, eid, groups, sample_limit) -> dict:
        members = {}
        for _, (_, m) in groups.items():
            for r, tags in m.items():
                members.setdefault(r, set()).update(tags)
        try:
            series, problems = self._read(provider, ctx, eid, {"*": members}, sample_limit)
        except Exception as exc:
            logger.warning("lossdoctor: read_scalars failed: %s", exc, exc_info=True)
            raise ReportUnavailable(
                "could not read the experiment's scalars (TensorBoard's log says why)"
            ) from exc
        series = [s for s in series if s.tag in members.get(s.run, ())]
        return self._assemble([self._diagnose_group("*", series, problems).parts], sample_limit)

    def _skeleton(self) -> dict:
        try:
            return self._diagnose([], [])
        except Exception:
            logger.error("lossdoctor: the engine fails on an empty experiment", exc_info=True)
            return {"runs": [], "problems": [], "sampled": False}

    def _assemble(self, parts, sample_limit) -> dict:
        """The report of the groups' parts (serialised once, by the caller, when complete)."""
        merged = merge_reports(parts, self._skeleton())
        out = {"version": report_mod.REPORT_VERSION, "generated_at": report_mod.utc_now()}
        out.update(merged)
        if out["sampled"] and sample_limit:
            out["sampling"] = {"limit": int(sample_limit), "hint": SAMPLING_HINT}
        return out


def _batches(names: List[str], members: Dict[str, dict], max_runs: int):
    """Consecutive groups of run groups holding at most `max_runs` runs (at least one group)."""
    batch, runs = [], 0
    for name in names:
        size = len(members[name])
        if batch and runs + size > max_runs:
            yield batch
            batch, runs = [], 0
        batch.append(name)
        runs += size
    if batch:
        yield batch


def _split_by_group(members: Dict[str, dict], series, problems) -> Dict[str, Tuple[list, list]]:
    """{group: (its series, its problems)} for the groups of one read."""
    out: Dict[str, Tuple[list, list]] = {name: ([], []) for name in members}
    run_to_group = {r: name for name, runs in members.items() for r in runs}
    for s in series:
        name = run_to_group.get(s.run)
        if name is not None and s.tag in members[name].get(s.run, ()):
            out[name][0].append(s)
    for p in problems:
        name = run_to_group.get(p.get("run"))
        if name is not None:
            out[name][1].append(p)
    return out


def _group_listing(listing) -> Dict[str, Tuple[tuple, Dict[str, set]]]:
    """{group: (data key, {run: {tag, ...}})} from a `list_scalars` answer."""
    raw: Dict[str, Dict[str, dict]] = {}
    for run, tags in (listing or {}).items():
        if not tags:
            continue
        raw.setdefault(group_key(run, tuple(sorted(tags))), {})[run] = tags
    out = {}
    for name, runs in raw.items():
        key = tuple(
            sorted(
                (run, tag, _num(getattr(ts, "max_step", None)), _num(getattr(ts, "max_wall_time", None)))
                for run, tags in runs.items()
                for tag, ts in tags.items()
            )
        )
        out[name] = (key, {run: set(tags) for run, tags in runs.items()})
    return out


def _num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
