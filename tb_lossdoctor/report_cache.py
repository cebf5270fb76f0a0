"""Build the plugin's report from a TensorBoard data provider, diagnosing only what changed.

The provider's `list_scalars` is cheap and tells, per (run, tag), the last step and wall time it
holds. Each run group's diagnosis is cached under the tuple of those values for the group's series,
so a request that finds no new data recomputes nothing, and new data re-reads and re-diagnoses
only the groups it touched (one `read_scalars` call for all of them). Assembled reports are cached
too, so concurrent identical requests get byte-identical bodies.

What a request still does for every run is kept small (issue #13: a change to one run of
10,000 costs a few percent of a cold report): the listing is read straight from TensorBoard's
data server when it is the provider, into flat tuples the garbage collector soon stops tracking;
each run's group is remembered while its tag names stay the same; and the body is joined from
JSON text kept per run (each run's entry is serialised once, when its group is diagnosed or its
HParams record changes), in the report's order, around the small top-level fields. The previous
body's assembly is patched with the changed groups; the across-runs `sweep` is recomputed whole.

A build with many run groups to diagnose also hands them, in chunks, to worker processes
(`plugin_pool`: started by the first such build, then kept); the report is the same, byte for
byte (`chunk_parts` runs the same code here and there).

TensorBoard serves requests from threads. One lock guards the caches' dictionaries and is held
only to look up or store; reading and diagnosing happen outside it. One build runs per report
key at a time (a request for a key being built waits for that build and gets its body), and a
request whose report is already cached never waits.
"""

from __future__ import annotations

import collections
import itertools
import json
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
    """One run group's part of a report: the engine's report minus version and generated_at.

    Also kept, computed on first use: the part's other top-level fields that are not neutral
    (`rest`), and per run its entry as the whole report has it (with the hyperparameters that
    depend on the other runs' names and the HParams records) and that entry's JSON text."""

    __slots__ = ("parts", "_rest", "_entries")

    def __init__(self, parts: dict):
        self.parts = parts
        self._rest = None  # (skeleton, [(field, value)])
        self._entries: Dict[str, tuple] = {}  # run -> ((record, is child), entry, JSON text)

    def rest(self, skeleton: dict) -> List[tuple]:
        """The fields `merge_reports` would merge, minus `runs` and `sweep` (rebuilt whole) and
        minus the neutral values ([], 0, False) of fields the skeleton holds as the same neutral
        value: merging those changes nothing (the engine gives each field one type). Most groups
        have nothing left."""
        memo = self._rest
        if memo is not None and memo[0] is skeleton:
            return memo[1]
        out = []
        for k, v in self.parts.items():
            if k in ("runs", "sweep") and k in skeleton:
                continue
            if k in skeleton and _neutral(v) and type(v) is type(skeleton[k]) and _neutral(skeleton[k]):
                continue
            out.append((k, v))
        self._rest = (skeleton, out)
        return out

    def entry(self, run: dict, record_key, record, child: bool) -> Tuple[dict, str]:
        """`run` (one of this part's entries) as `engine.add_sweep` writes it in the whole report,
        and its JSON text; recomputed only when its HParams record or record-child state changed."""
        key = (record_key, child)
        memo = self._entries.get(run["run"])
        if memo is not None and memo[0] == key:
            return memo[1], memo[2]
        swept = _swept_entry(run, record, child)
        text = report_mod.dumps(swept)
        self._entries[run["run"]] = (key, swept, text)
        return swept, text


def group_parts(series, problems, settings) -> dict:
    """One run group's part of the report (`_GroupResult.parts`): the engine's report on its
    series, minus the fields of the whole report."""
    from tb_lossdoctor import engine

    rep = engine.diagnose(series, settings, problems=list(problems))
    report_mod.dumps(rep)  # must be valid JSON on its own
    rep = {k: v for k, v in rep.items() if k not in _OWN_FIELDS}
    rep.setdefault("sampled", any(s.sampled for s in series))
    return rep


def chunk_parts(chunk, settings) -> List[Optional[dict]]:
    """`group_parts` of each (name, series, problems), here or in a worker process; None where
    it raised (the group is diagnosed again in the plugin's process, which logs the failure
    and lists it in the report)."""
    out: List[Optional[dict]] = []
    for _, series, problems in chunk:
        try:
            out.append(group_parts(series, problems, settings))
        except Exception:
            out.append(None)
    return out


def _neutral(value) -> bool:
    return value is False or (type(value) is int and value == 0) or (type(value) is list and not value)


def _swept_entry(run: dict, record: Optional[dict], child: bool) -> dict:
    """One run's entry with its `hparams` and `hparam_sources`: `engine.add_sweep`'s per-run step,
    given the record `hparams.assign_records` gave the run and `hparams.is_record_child`."""
    from tb_lossdoctor import hparams as hp

    run = {k: v for k, v in run.items() if k not in ("hparams", "hparam_sources")}
    values, sources = hp.merge((hp.SOURCE_RECORD, record or {}),
                               (hp.SOURCE_NAME, hp.parse_name(run["run"]).values),
                               (hp.SOURCE_CURVE, run.get("lr_curve") or {}))
    if values and not child:
        run["hparams"], run["hparam_sources"] = values, sources
    return run


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
    """A report being built by one thread; others asking for the same key wait on it."""

    __slots__ = ("done", "body", "error", "progress")

    def __init__(self):
        self.done = threading.Event()
        self.body: Optional[str] = None
        self.error: Optional[BaseException] = None
        self.progress: Dict[str, "_GroupResult"] = {}  # groups diagnosed so far (under the lock)


class ReportCache:
    """Per-group diagnosis cache plus assembled-report cache, both LRU-bounded and thread-safe."""

    def __init__(self, settings=None, *, max_groups: int = 1_000_000, max_reports: int = 64,
                 workers: Optional[int] = None):
        self.settings = settings
        # Worker processes for large builds (`plugin_pool`; None: `plugin_workers()`, 0: none),
        # started by the first build that has enough run groups to diagnose.
        self.workers = workers
        self._pool = None
        self._lock = threading.Lock()
        self._groups = _LRU(max_groups)  # (eid, group) -> (data_key, _GroupResult)
        self._reports = _LRU(max_reports)  # (eid, run filter, full key) -> JSON text
        self._building: Dict[tuple, _Build] = {}
        self._known_runs = _LRU(8)  # eid -> {run: (its sorted tag names, its group)}
        self._skeleton_parts: Optional[dict] = None
        self._words: Optional[tuple] = None  # (names, hparams.free_word_hparams of them)
        self._assemblies = _LRU(8)  # (eid, run filter) -> the last body's _Assembly
        self.diagnosed_groups = 0  # counters, for logs and tests
        self.reads = 0

    def clear(self):
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

    def _pool_for(self, groups: int):
        """The worker pool for a build with `groups` run groups to diagnose, or None."""
        from tb_lossdoctor import plugin_pool

        with self._lock:
            if self.workers is None:
                self.workers = plugin_pool.plugin_workers()
            if self._pool is None and self.workers and groups >= plugin_pool.POOL_START_GROUPS:
                self._pool = plugin_pool.WorkerPool(self.workers)
            return self._pool if groups >= plugin_pool.POOL_MIN_GROUPS else None

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
        with self._lock:
            known = self._known_runs.get(experiment_id)
        try:
            groups = _group_runs(_listed_runs(provider, ctx, experiment_id), known)
        except Exception as exc:  # the provider is unreachable or the experiment is unreadable
            logger.warning("lossdoctor: list_scalars failed: %s", exc, exc_info=True)
            raise ReportUnavailable(
                "could not list the experiment's scalars (TensorBoard's log says why)"
            ) from exc
        with self._lock:
            self._known_runs.put(experiment_id, groups.known)
        if run is not None:
            if run not in groups:
                raise UnknownRunGroup(run)
            groups = _Groups({run: groups[run]}, groups.known)
            file_problems = [p for p in file_problems if p.get("run") == run]
        file_key = tuple((p.get("run"), p.get("reason")) for p in file_problems)
        hparams = hparams_records.read_hparams(provider, ctx, experiment_id)  # for the sweep
        full_key = _Key((experiment_id, run, sample_limit, file_key, hparams_records.freeze(hparams),
                         groups.flat()))

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
            results, extra_problems, cacheable = self._build(provider, ctx, eid, groups, sample_limit, build)
            view = (eid, full_key.value[1])  # the run filter
            body = self._body(results, extra_problems, sample_limit, hparams, file_problems, view)
            if body is None:
                # Our grouping split what the engine joins: diagnose those groups together instead.
                logger.warning("lossdoctor: run grouping disagrees with the engine; diagnosing together")
                from tb_lossdoctor.engine import add_sweep

                report = add_sweep(self._build_together(provider, ctx, eid, groups, sample_limit), hparams)
                cacheable = True
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

    def _build(self, provider, ctx, eid, groups, sample_limit, build: Optional[_Build] = None):
        """({group: result}, problems of groups that could not be read, cacheable), diagnosing
        only the stale groups."""
        results: Dict[str, _GroupResult] = {}
        stale: Dict[str, dict] = {}
        previous: Dict[str, _GroupResult] = {}
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
        if build is not None:
            with self._lock:
                build.progress.update(results)

        extra_problems: List[dict] = []
        unread: List[str] = []

        def chunks():
            """The stale groups' (name, series, problems), read a batch at a time: memory holds a
            few batches' points, never the whole logdir's."""
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

        def diagnosed(chunk, parts):
            for (name, group_series, group_problems), part in zip(chunk, parts):
                result = self._diagnose_group(name, group_series, group_problems, part)
                results[name] = result
                with self._lock:  # every result is kept (the cache is sized to the logdir)
                    self._groups.put((eid, name), (groups[name], result))
                    if build is not None:
                        build.progress[name] = result

        # Diagnosed in this thread and, for large builds, in worker processes too.
        from tb_lossdoctor import plugin_pool

        plugin_pool.spread(self._pool_for(len(stale)), chunks(), chunk_parts, (self.settings,), diagnosed)
        for name in unread:
            if name in previous:
                results[name] = previous[name]
                reason = "could not re-read new data; showing the previous diagnosis"
            else:
                reason = "could not read this run group (TensorBoard's log says why)"
            extra_problems.append({"run": name, "tag": None, "reason": reason})
        if stale and not results:
            raise ReportUnavailable("could not read the experiment's scalars (TensorBoard's log says why)")
        return results, extra_problems, not unread

    def _read(self, provider, ctx, eid, stale, sample_limit):
        runs = sorted({r for members in stale.values() for r in members})
        tags = sorted({t for members in stale.values() for tags in members.values() for t in tags})
        with self._lock:
            self.reads += 1
        return provider_reader.read_series(
            provider, ctx, eid, runs=runs, tags=tags, sample_limit=sample_limit
        )

    def _diagnose_group(self, name, series, problems, parts: Optional[dict] = None) -> _GroupResult:
        """The group's result, from its `parts` when they were diagnosed already (`chunk_parts`)."""
        with self._lock:
            self.diagnosed_groups += 1
        if parts is not None:
            return _GroupResult(parts)
        try:
            return _GroupResult(group_parts(series, problems, self.settings))
        except Exception:  # one broken group must not take the report down
            logger.error("lossdoctor: diagnosing run group %r failed", name, exc_info=True)
            failure = {"run": name, "tag": None, "reason": "diagnosis failed (TensorBoard's log has the details)"}
            return _GroupResult({
                "runs": [],
                "problems": list(problems) + [failure],
                "sampled": any(s.sampled for s in series),
            })

    def _build_together(self, provider, ctx, eid, groups, sample_limit) -> dict:
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
        return self._assemble([self._diagnose_group("*", series, problems).parts], sample_limit)

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

    def _assemble(self, parts, sample_limit) -> dict:
        """The report of the groups' parts (serialised once, by the caller, when complete)."""
        merged = merge_reports(parts, self._skeleton())
        out = {"version": report_mod.REPORT_VERSION, "generated_at": report_mod.utc_now()}
        out.update(merged)
        if out["sampled"] and sample_limit:
            out["sampling"] = {"limit": int(sample_limit), "hint": SAMPLING_HINT}
        return out


    def _body(self, results: Dict[str, _GroupResult], extra_problems, sample_limit, hparams, file_problems,
              view: tuple = ()) -> Optional[str]:
        """The whole report's JSON text: what `_assemble`, `engine.add_sweep` and `report.dumps`
        give, byte for byte, joined from each run's JSON text (serialised once, see
        `_GroupResult`). None when two groups hold runs of the same name.

        The previous body's assembly for the same `view` (experiment, run filter) is patched
        with the groups diagnosed since, when the runs and HParams records are the same; else
        it is assembled anew. Either way, per request: the runs are put in the report's order
        (`report.order_runs`, on a list already in order but for the changed runs), the few
        non-neutral top-level fields are merged, the across-runs `sweep` is recomputed over every
        run, and the texts are joined."""
        from tb_lossdoctor.sweep import analyse

        skeleton = self._skeleton()
        frozen = hparams_records.freeze(hparams or {})
        with self._lock:
            previous = self._assemblies.get(view)
        assembly = None
        if previous is not None and previous.skeleton is skeleton and previous.hparams_key == frozen:
            assembly = previous.patched(results)
        if assembly is None:
            assembly = _Assembly.build(results, skeleton, hparams, frozen, self._words)
            if assembly is None:
                return None  # two groups hold runs of the same name: see `_build_report`
            self._words = assembly.words
        with self._lock:
            self._assemblies.put(view, assembly)

        rests = [dict(assembly.rests[name]) for name in sorted(assembly.rests)]
        if extra_problems:
            rests.append({"problems": extra_problems})
        out = self._assemble(rests, sample_limit)  # every top-level field; `runs` are joined below
        out["sweep"] = analyse(assembly.entries, assembly.words[1])
        if file_problems:
            out["problems"] = list(out.get("problems", [])) + list(file_problems)
        head, tail = [], []
        for k, v in out.items():
            if k == "runs":
                head.append(_dumps_key(k) + ": [")
                tail = [""]
            else:
                (tail or head).append(_dumps_key(k) + ": " + report_mod.dumps(v))
        if not tail:  # no `runs` field at all (an engine without one): nothing to join
            return "{" + ", ".join(head) + "}"
        return "".join(("{", ", ".join(head), ", ".join(assembly.texts), "]", ", ".join(tail), "}"))


class _Assembly:
    """The runs of one body, in the report's order, with what the whole report writes for each:
    read-only once built, patched into a new one by `patched`."""

    __slots__ = ("skeleton", "hparams_key", "results", "ordered", "swept", "entries", "texts", "rests",
                 "records", "children", "words")

    @classmethod
    def build(cls, results: Dict[str, _GroupResult], skeleton, hparams, hparams_key, words_memo):
        """From every group's result; None when two groups hold runs of the same name."""
        from tb_lossdoctor import hparams as hp

        self = cls()
        self.skeleton, self.hparams_key, self.results = skeleton, hparams_key, dict(results)
        order = sorted(results)
        self.rests = {name: rest for name, rest in ((n, results[n].rest(skeleton)) for n in order) if rest}
        self.ordered = report_mod.order_runs([run for name in order for run in results[name].parts.get("runs", ())])
        names = [run["run"] for run in self.ordered]
        groups = set(names)
        if len(groups) != len(names):
            return None
        self.records = hp.assign_records(hparams, groups) if hparams else {}
        self.children = frozenset(n for n in names if hp.is_record_child(n, groups))
        self.swept = {}
        for name in order:
            self._sweep(results[name])
        # As `engine.add_sweep`: words of the names that become settings across the set (a pure
        # function of the names, kept while they stay the same).
        free = tuple(n for n in names if n not in self.children)
        if words_memo is None or words_memo[0] != free:
            words_memo = (free, hp.free_word_hparams(list(free)))
        self.words = words_memo
        self._lists()
        return self

    def patched(self, results: Dict[str, _GroupResult]) -> "Optional[_Assembly]":
        """This assembly with the groups whose result changed; None when the groups or their
        runs' names changed (or most groups did): then it is built anew."""
        old = self.results
        if len(results) != len(old):
            return None
        changed = [name for name, result in results.items() if old.get(name) is not result]
        if not changed:
            return self
        if len(changed) * 4 > len(results):
            return None
        for name in changed:
            if name not in old:
                return None
            before = [run["run"] for run in old[name].parts.get("runs", ())]
            if sorted(before) != sorted(run["run"] for run in results[name].parts.get("runs", ())):
                return None
        new = _Assembly()
        new.skeleton, new.hparams_key, new.records, new.children, new.words = (
            self.skeleton, self.hparams_key, self.records, self.children, self.words)
        new.results = dict(old)
        new.rests = dict(self.rests)
        new.swept = dict(self.swept)
        dropped = set()
        added = []
        for name in changed:
            dropped.update(id(run) for run in old[name].parts.get("runs", ()))
            added.extend(results[name].parts.get("runs", ()))
            new.results[name] = results[name]
            rest = results[name].rest(self.skeleton)
            if rest:
                new.rests[name] = rest
            else:
                new.rests.pop(name, None)
            new._sweep(results[name])
        # The unchanged runs stay in order: sorting them with the changed ones is one merge.
        new.ordered = report_mod.order_runs([run for run in self.ordered if id(run) not in dropped] + added)
        new._lists()
        return new

    def _sweep(self, result: _GroupResult) -> None:
        for run in result.parts.get("runs", ()):
            name = run["run"]
            record = self.records.get(name)
            record_key = None if record is None else hparams_records.freeze({"": record})
            self.swept[name] = result.entry(run, record_key, record, name in self.children)

    def _lists(self) -> None:
        pairs = [self.swept[run["run"]] for run in self.ordered]
        self.entries = [entry for entry, _ in pairs]
        self.texts = [text for _, text in pairs]


def _dumps_key(key) -> str:
    return json.dumps(str(key), ensure_ascii=False)


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
