"""Keep the plugin's diagnoses per run group, so that a report diagnoses only what changed.

The provider's `list_scalars` is cheap and tells, per (run, tag), the last step and wall time it
holds. Each run group's diagnosis (a `report_assembly.GroupResult`) is cached under the tuple of
those values for the group's series, its data key: a request that finds no new data recomputes
nothing, and new data re-reads (`read_scalars`, a batch of runs at a time) and re-diagnoses only
the groups it touched. Report bodies are cached too, under the experiment, the run filter, the
sample limit, the logdir's problems, the HParams records and every group's data key, so that
concurrent identical requests get byte-identical bodies. `report_assembly` makes a body from the
groups' results; this module decides what to read and diagnose, and keeps what can be kept:

- `_groups`: (experiment, group) -> (data key, result), LRU-bounded by `max_groups` (sized to
  hold the whole logdir: every result is kept);
- `_reports`: per view (experiment, run filter), its last body and that body's report key,
  LRU-bounded by `max_reports` views: a body whose data key has moved on is never asked for
  again (the data only grows), and at 10,000 runs each is 13 MB;
- `_known_runs`: per experiment, each run's tag names and group, so that a run is grouped again
  only when its tag names change; `_assemblies`: per view (experiment, run filter), the last
  body's `report_assembly.Assembly`, which the next body patches; both for 8 experiments/views.

What a request still does for every run is kept small (issue #13: a change to one run of
10,000 costs a few percent of a cold report): the listing is read straight from TensorBoard's
data server when it is the provider, into flat tuples the garbage collector soon stops tracking
(`_Groups`), and each run's group is remembered while its tag names stay the same.

A build with many run groups to diagnose also hands them, in chunks, to worker processes
(`plugin_pool`: started by the first such build, kept while builds use it); the report is the
same, byte for byte (`chunk_results` runs the same code here and there).

TensorBoard serves requests from threads. One lock guards the caches' dictionaries and is held
only to look up or store; reading and diagnosing happen outside it. One build runs per report
key at a time (a request for a key being built waits for that build and gets its body); a
build for a new key of the same view (the listing grew) first waits for the builds of that view
already running, so no run group is diagnosed twice side by side; and a request whose report is
already cached never waits.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
from typing import Dict, List, Optional, Sequence, Tuple

from tensorboard import errors as tb_errors

from tb_lossdoctor import report as report_mod
from tb_lossdoctor import report_assembly
from tb_lossdoctor.grouping import group_key
from tb_lossdoctor.readers import hparams_records
from tb_lossdoctor.readers import provider as provider_reader
from tb_lossdoctor.report_assembly import GroupResult

logger = logging.getLogger(__name__)

# TensorBoard keeps this many points per scalar tag unless `--samples_per_plugin scalars=N`.
DEFAULT_SCALAR_SAMPLES = 1000


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


# -- diagnosing run groups: here or in a worker process ----------------------------------------


def group_parts(series, problems, settings) -> dict:
    """One run group's part of the report (what a `GroupResult` keeps): the engine's report on
    its series, minus the fields of the whole report."""
    from tb_lossdoctor import engine

    return _parts_of(engine.diagnose(series, settings, problems=list(problems)), series)


def _parts_of(rep: dict, series) -> dict:
    report_mod.dumps(rep)  # must be valid JSON on its own
    rep = {k: v for k, v in rep.items() if k not in report_assembly.WHOLE_REPORT_FIELDS}
    rep.setdefault("sampled", any(s.sampled for s in series))
    return rep


def chunk_results(chunk, settings) -> List[Optional[GroupResult]]:
    """The `GroupResult` of each (name, series, problems), here or in a worker process, the
    chunk's curves analysed together (`engine.diagnose_each`) and its runs' entries written
    (`GroupResult`); None where it raised (the group is diagnosed again in the
    plugin's process, which logs the failure and lists it in the report)."""
    from tb_lossdoctor import engine

    try:
        reports = engine.diagnose_each([(series, problems) for _, series, problems in chunk], settings)
    except Exception:  # one group's bad data must not cost the chunk: one by one, as before
        reports = [None] * len(chunk)
    out: List[Optional[GroupResult]] = []
    for (_, series, problems), rep in zip(chunk, reports):
        try:
            parts = _parts_of(rep, series) if rep is not None else group_parts(series, problems, settings)
            out.append(GroupResult(parts))
        except Exception:
            out.append(None)
    return out


# -- the caches' building blocks ----------------------------------------------------------------


class _LRU:
    """A dictionary holding at most `size` entries, evicting the least recently used."""

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


class _Key:
    """A report's cache key, hashed once: it holds every group's data key (10,000 runs: 20,000
    last steps and wall times), which each dictionary operation would otherwise hash again."""

    __slots__ = ("value", "_hash")

    def __init__(self, value: tuple):
        self.value = value
        self._hash = hash(value)

    def __hash__(self):
        return self._hash

    def __eq__(self, other):
        return self is other or (isinstance(other, _Key) and self._hash == other._hash and self.value == other.value)


class _Build:
    """A report being built by one thread; others asking for the same key wait on it.

    `earlier`: the builds of the same view (experiment and run filter) already running when
    this one started, for other keys (the listing grew meanwhile). This build waits for them
    before diagnosing anything: the groups they are diagnosing are then cached, not diagnosed a
    second time side by side. Only earlier builds are waited for, so no two builds wait on
    each other."""

    __slots__ = ("view", "earlier", "done", "body", "error", "progress")

    def __init__(self, view: tuple, earlier: Sequence["_Build"] = ()):
        self.view = view
        self.earlier = list(earlier)
        self.done = threading.Event()
        self.body: Optional[str] = None
        self.error: Optional[BaseException] = None
        self.progress: Dict[str, GroupResult] = {}  # groups diagnosed so far (under the lock)


# -- the cache ------------------------------------------------------------------------------------


class ReportCache:
    """Per-group diagnosis cache plus report body cache, both LRU-bounded and thread-safe."""

    def __init__(self, settings=None, *, max_groups: int = 1_000_000, max_reports: int = 64,
                 workers: Optional[int] = None):
        self.settings = settings
        # Worker processes for large builds (`plugin_pool`; None: `plugin_workers()`, 0: none),
        # started by the first build that has enough run groups to diagnose.
        self.workers = workers
        self._pool = None
        self._lock = threading.Lock()
        self._groups = _LRU(max_groups)  # (eid, group) -> (data_key, GroupResult)
        self._reports = _LRU(max_reports)  # (eid, run filter) -> (report key (`_Key`), JSON text)
        self._building: Dict[tuple, _Build] = {}
        self._known_runs = _LRU(8)  # eid -> {run: (its sorted tag names, its group)}
        self._skeleton_parts: Optional[dict] = None
        self._words: Optional[tuple] = None  # (names, hparams.free_word_hparams of them)
        self._assemblies = _LRU(8)  # (eid, run filter) -> the last body's report_assembly.Assembly
        self.diagnosed_groups = 0  # counters, for logs and tests
        self.reads = 0

    def clear(self) -> None:
        """Forget everything cached (the worker pool stays)."""
        with self._lock:
            self._groups.clear()
            self._reports.clear()
            self._known_runs.clear()
            self._skeleton_parts = None
            self._words = None
            self._assemblies.clear()

    def close(self) -> None:
        """Stop the worker processes, if any were started (they also stop when the process exits)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

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
        partial_after: Optional[Tuple[float, float]] = None,
    ) -> str:
        """The report as JSON text. Raises `UnknownRunGroup` or `ReportUnavailable`.

        `file_problems` are what the logdir's listing showed to be unusable (empty or unreadable
        event files); the data provider skips those silently, so the plugin passes them in.
        With `partial_after` (seconds: for the request that starts the build, for the others), a
        report still being built after that long is answered with the run groups diagnosed so
        far and a `pending` count (never cached); the build goes on in the background and a
        later request gets the whole report.
        """
        groups = self._list_groups(provider, ctx, experiment_id)
        if run is not None:
            if run not in groups:
                raise UnknownRunGroup(run)
            groups = _Groups({run: groups[run]}, groups.known)
            file_problems = [p for p in file_problems if p.get("run") == run]
        file_key = tuple((p.get("run"), p.get("reason")) for p in file_problems)
        hparams = hparams_records.read_hparams(provider, ctx, experiment_id)  # for the sweep
        full_key = _Key((experiment_id, run, sample_limit, file_key, hparams_records.freeze(hparams),
                         groups.flat()))
        view = (experiment_id, run)

        while True:
            with self._lock:
                last = self._reports.get(view)
                if last is not None and last[0] == full_key:
                    return last[1]
                build = self._building.get(full_key)
                mine = build is None
                if mine:
                    earlier = [b for b in self._building.values() if b.view == view]
                    build = self._building[full_key] = _Build(view, earlier)
            args = (build, full_key, provider, ctx, experiment_id, groups, sample_limit, file_problems, hparams)
            if mine and partial_after is None:
                return self._build_report(*args)
            if mine:
                threading.Thread(target=self._build_in_background, args=args, daemon=True,
                                 name="lossdoctor-report").start()
            wait = None if partial_after is None else partial_after[0 if mine else 1]
            if not build.done.wait(wait):
                return self._partial(build, groups, sample_limit)
            if build.error is not None:
                raise build.error
            if build.body is not None:
                return build.body

    def _list_groups(self, provider, ctx, eid: str) -> "_Groups":
        """The experiment's run groups and their data keys (`_Groups`), from the provider's
        listing; remembers each run's group for the next listing."""
        with self._lock:
            known = self._known_runs.get(eid)
        try:
            groups = _group_runs(_listed_runs(provider, ctx, eid), known)
        except Exception as exc:  # the provider is unreachable or the experiment is unreadable
            logger.warning("lossdoctor: list_scalars failed: %s", exc, exc_info=True)
            raise ReportUnavailable(
                "could not list the experiment's scalars (TensorBoard's log says why)"
            ) from exc
        with self._lock:
            self._known_runs.put(eid, groups.known)
        return groups

    def _build_in_background(self, *args) -> None:
        try:
            self._build_report(*args)
        except BaseException:  # kept in the build for the requests waiting on it
            logger.debug("lossdoctor: background report build failed", exc_info=True)

    def _partial(self, build: _Build, groups: dict, sample_limit) -> str:
        """The groups diagnosed so far (by this build or the earlier ones it waits for), worst
        first, and how many are still pending."""
        with self._lock:
            progress = {name: result for earlier in build.earlier
                        for name, result in earlier.progress.items() if name in groups}
            progress.update(build.progress)
        return report_assembly.partial_json(progress, groups, self._skeleton(), sample_limit)

    def _build_report(self, build, full_key, provider, ctx, eid, groups, sample_limit, file_problems,
                      hparams=None) -> str:
        """Build one report outside the lock; publish it to the waiters and the cache."""
        cacheable = False
        try:
            results, extra_problems, cacheable = self._build(provider, ctx, eid, groups, sample_limit, build)
            view = (eid, full_key.value[1])  # the run filter
            body = self._body(results, extra_problems, sample_limit, hparams, file_problems, view)
            if body is None:
                # Our grouping split what the engine joins: diagnose those groups together instead.
                logger.warning("lossdoctor: run grouping disagrees with the engine; diagnosing together")
                together = self._build_together(provider, ctx, eid, groups, sample_limit)
                body = report_assembly.together_json(together, hparams, file_problems)
                cacheable = True
            build.body = body
            return body
        except BaseException as exc:
            build.error = exc
            raise
        finally:
            with self._lock:
                if cacheable and build.body is not None:
                    self._reports.put(build.view, (full_key, build.body))
                del self._building[full_key]
            build.done.set()

    # -- building -----------------------------------------------------------------------------

    def _build(self, provider, ctx, eid, groups, sample_limit, build: Optional[_Build] = None):
        """({group: result}, problems of groups that could not be read, cacheable), diagnosing
        only the stale groups."""
        for earlier in build.earlier if build is not None else ():
            earlier.done.wait()  # its groups are cached then (and a failed one left them stale)
        results, stale, previous = self._cached_results(eid, groups)
        if build is not None:
            with self._lock:
                build.progress.update(results)
                build.earlier = []  # what they diagnosed is in `results` now
        unread: List[str] = []

        def diagnosed(chunk, done):
            for (name, group_series, group_problems), result in zip(chunk, done):
                result = self._diagnose_group(name, group_series, group_problems, result)
                results[name] = result
                with self._lock:  # every result is kept (the cache is sized to the logdir)
                    self._groups.put((eid, name), (groups[name], result))
                    if build is not None:
                        build.progress[name] = result

        # Diagnosed in this thread and, for large builds, in worker processes too.
        from tb_lossdoctor import plugin_pool

        chunks = self._stale_chunks(provider, ctx, eid, stale, sample_limit, unread)
        plugin_pool.spread(self._pool_for(len(stale)), chunks, chunk_results, (self.settings,), diagnosed)
        extra_problems = _previous_for_unread(unread, previous, results)
        if stale and not results:
            raise ReportUnavailable("could not read the experiment's scalars (TensorBoard's log says why)")
        return results, extra_problems, not unread

    def _cached_results(self, eid, groups: "_Groups"):
        """({group: cached result} of the groups whose data key is unchanged, {group: members}
        of the others (stale), {group: previous result} of the stale groups that had one)."""
        results: Dict[str, GroupResult] = {}
        stale: Dict[str, dict] = {}
        previous: Dict[str, GroupResult] = {}
        with self._lock:
            cached_groups = {name: self._groups.get((eid, name)) for name in groups}
        for name, key in groups.items():
            cached = cached_groups[name]
            if cached is not None and cached[0] == key:
                results[name] = cached[1]
            else:
                stale[name] = groups.members(name)
                if cached is not None:
                    previous[name] = cached[1]
        return results, stale, previous

    def _stale_chunks(self, provider, ctx, eid, stale: Dict[str, dict], sample_limit, unread: List[str]):
        """The stale groups' (name, series, problems), in chunks for `plugin_pool.spread`, read a
        batch at a time: memory holds a few batches' points, never the whole logdir's. The groups
        of a batch that could not be read are added to `unread`."""
        from tb_lossdoctor import plugin_pool

        for batch in _batches(sorted(stale), stale, provider_reader.READ_BATCH_RUNS):
            members = {name: stale[name] for name in batch}
            try:
                series, problems = self._read(provider, ctx, eid, members, sample_limit)
            except Exception as exc:
                logger.warning("lossdoctor: read_scalars failed: %s", exc, exc_info=True)
                unread.extend(batch)
                continue
            items = [(name, *found) for name, found in _split_by_group(members, series, problems).items()]
            del series
            for start in range(0, len(items), plugin_pool.CHUNK_GROUPS):
                yield items[start:start + plugin_pool.CHUNK_GROUPS]

    def _pool_for(self, groups: int):
        """The worker pool for a build with `groups` run groups to diagnose, or None."""
        from tb_lossdoctor import plugin_pool

        with self._lock:
            if self.workers is None:
                self.workers = plugin_pool.plugin_workers()
            if self._pool is None and self.workers and groups >= plugin_pool.POOL_START_GROUPS:
                self._pool = plugin_pool.WorkerPool(self.workers)
            return self._pool if groups >= plugin_pool.POOL_MIN_GROUPS else None

    def _read(self, provider, ctx, eid, stale, sample_limit):
        """The series and problems of the runs and tags of `stale` ({group: {run: tags}})."""
        runs = sorted({r for members in stale.values() for r in members})
        tags = sorted({t for members in stale.values() for tags in members.values() for t in tags})
        with self._lock:
            self.reads += 1
        return provider_reader.read_series(
            provider, ctx, eid, runs=runs, tags=tags, sample_limit=sample_limit
        )

    def _diagnose_group(self, name, series, problems, done: Optional[GroupResult] = None) -> GroupResult:
        """The group's result: `done` when it was diagnosed already (`chunk_results`)."""
        with self._lock:
            self.diagnosed_groups += 1
        if done is not None:
            return done
        return GroupResult(self._parts(name, series, problems))

    def _parts(self, name, series, problems) -> dict:
        """`group_parts`, or the group's failure as a problem: one broken group must not take
        the report down."""
        try:
            return group_parts(series, problems, self.settings)
        except Exception:
            logger.error("lossdoctor: diagnosing run group %r failed", name, exc_info=True)
            failure = {"run": name, "tag": None, "reason": "diagnosis failed (TensorBoard's log has the details)"}
            return {"runs": [], "problems": list(problems) + [failure], "sampled": any(s.sampled for s in series)}

    def _build_together(self, provider, ctx, eid, groups, sample_limit) -> dict:
        """The whole report (no `sweep` yet) with every group's runs diagnosed as one group."""
        members = {}
        for name in groups:
            for r, tags in groups.members(name).items():
                members.setdefault(r, set()).update(tags)
        try:
            series, problems = self._read(provider, ctx, eid, {"*": members}, sample_limit)
        except Exception as exc:
            logger.warning("lossdoctor: read_scalars failed: %s", exc, exc_info=True)
            raise ReportUnavailable(
                "could not read the experiment's scalars (TensorBoard's log says why)"
            ) from exc
        series = [s for s in series if s.tag in members.get(s.run, ())]
        with self._lock:
            self.diagnosed_groups += 1
        parts = [self._parts("*", series, problems)]
        return report_assembly.whole_report(parts, self._skeleton(), sample_limit)

    # -- assembling (`report_assembly`), with what is kept between requests -------------------

    def _skeleton(self) -> dict:
        """The engine's report on nothing (computed once; read-only)."""
        skeleton = self._skeleton_parts
        if skeleton is None:
            try:
                skeleton = group_parts([], [], self.settings)
            except Exception:
                logger.error("lossdoctor: the engine fails on an empty experiment", exc_info=True)
                skeleton = {"runs": [], "problems": [], "sampled": False}
            self._skeleton_parts = skeleton
        return skeleton

    def _body(self, results: Dict[str, GroupResult], extra_problems, sample_limit, hparams, file_problems,
              view: tuple = ()) -> Optional[str]:
        """The whole report's JSON text (`report_assembly.body_json`), patching the previous
        body's assembly for the same `view` (experiment, run filter) when it can, and keeping
        this one for the next body. None when two groups hold runs of the same name."""
        with self._lock:
            previous = self._assemblies.get(view)
        assembly = report_assembly.assemble(results, self._skeleton(), hparams, previous, self._words)
        if assembly is None:
            return None  # two groups hold runs of the same name: see `_build_report`
        self._words = assembly.words
        with self._lock:
            self._assemblies.put(view, assembly)
        return report_assembly.body_json(assembly, extra_problems, sample_limit, file_problems)


# -- reading the stale groups ----------------------------------------------------------------------


def _previous_for_unread(unread: List[str], previous: Dict[str, GroupResult],
                         results: Dict[str, GroupResult]) -> List[dict]:
    """The problems of the groups that could not be read; those that had a result keep it
    (added to `results`)."""
    problems = []
    for name in unread:
        if name in previous:
            results[name] = previous[name]
            reason = "could not re-read new data; showing the previous diagnosis"
        else:
            reason = "could not read this run group (TensorBoard's log says why)"
        problems.append({"run": name, "tag": None, "reason": reason})
    return problems


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


# -- the listing: run groups and their data keys -----------------------------------------------------


class _Groups(dict):
    """{group: data key} of one listing, and `known`: {run: (tag names, group)}.

    A run's row is the flat tuple `(run, number of tags, tag, last step, last wall time, ...)`
    (tags sorted); a group's data key is its runs' rows joined in run order. Flat tuples of plain
    values: Python's garbage collector stops tracking them at its first pass, whereas nested
    tuples survive into its oldest generation and, 20,000 of them per request at 10,000 runs,
    soon make it walk the whole heap (a second or more with TensorFlow loaded)."""

    __slots__ = ("known",)

    def __init__(self, keys, known: dict):
        super().__init__(keys)
        self.known = known

    def members(self, name: str) -> Dict[str, frozenset]:
        """{run: {tag, ...}} of one group."""
        key, out, i = self[name], {}, 0
        while i < len(key):
            n = key[i + 1]
            out[key[i]] = frozenset(key[i + 2:i + 2 + 3 * n:3])
            i += 2 + 3 * n
        return out

    def flat(self) -> tuple:
        """Every group's name and data key, in name order, as one flat tuple (a cache key)."""
        return tuple(itertools.chain.from_iterable(_pieces(self)))


def _pieces(groups: Dict[str, tuple]):
    """Each group's (name, length of its data key), then its data key, in name order."""
    for name in sorted(groups):
        key = groups[name]
        yield (name, len(key))
        yield key


def _row(run: str, tags) -> tuple:
    """A run's row (see `_Groups`) from its (tag, last step, last wall time) triples."""
    return (run, len(tags), *itertools.chain.from_iterable(sorted(tags)))


def _listed_runs(provider, ctx, eid) -> List[tuple]:
    """The rows (see `_Groups`) of the runs with scalars.

    From TensorBoard's data server, the `ListScalars` answer is read in place (no Python object
    per tag, as `GrpcDataProvider.list_scalars` builds), on the provider's stub, for the
    TensorBoard versions `read_series`' columnar read was tested with; else `list_scalars`."""
    stub = provider_reader.columnar_stub(provider)
    if stub is None:
        return _rows_of_listing(provider_reader.list_scalar_tags(provider, ctx, eid))
    from tensorboard.data.proto import data_provider_pb2

    req = data_provider_pb2.ListScalarsRequest()
    req.experiment_id = eid
    req.plugin_filter.plugin_name = provider_reader.SCALARS_PLUGIN
    rows = []
    for run_entry in stub.ListScalars(req).runs:
        tags = run_entry.tags
        if len(tags) == 1:  # most runs of a Keras-style logdir: no sorting
            meta = tags[0].metadata
            rows.append((run_entry.run_name, 1, tags[0].tag_name, meta.max_step, meta.max_wall_time))
        elif tags:
            rows.append(_row(run_entry.run_name, [(t.tag_name, m.max_step, m.max_wall_time)
                                                  for t in tags for m in (t.metadata,)]))
    return rows


def _rows_of_listing(listing) -> List[tuple]:
    """The rows (see `_Groups`) of a `list_scalars` answer ({run: {tag: ScalarTimeSeries}})."""
    return [
        _row(run, [(tag, getattr(ts, "max_step", None), getattr(ts, "max_wall_time", None)) for tag, ts in tags.items()])
        for run, tags in (listing or {}).items()
        if tags
    ]


def _group_runs(rows: List[tuple], known: Optional[dict] = None) -> _Groups:
    """The run groups of a listing's rows (`_listed_runs`). `known` (the previous listing's)
    spares grouping a run again while its tag names stay the same."""
    known = known or {}
    now = {}
    keys: Dict[str, tuple] = {}
    rows.sort()  # by run: a group's rows are joined in run order
    for row in rows:
        run = row[0]
        names = row[2::3]
        slot = known.get(run)
        if slot is None or slot[0] != names:
            slot = (names, group_key(run, names))
        now[run] = slot
        found = keys.get(slot[1])
        keys[slot[1]] = row if found is None else found + row
    return _Groups(keys, now)
