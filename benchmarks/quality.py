"""Verdict quality: the engine on labelled real runs and on fresh demo variants.

    python benchmarks/quality.py                      # ../shared/realworld, default settings
    python benchmarks/quality.py --cross-validate     # + repository-level calibration checks
    python benchmarks/quality.py --demo VARIANTS/s100 VARIANTS/s200   # from demo/generate.py --out
    python benchmarks/quality.py --perturb            # + verdicts under label-preserving changes

The labelled set (`../shared/realworld/labels.json`) says per case which codes must be reported
(`must_any`, `must_all`) and which would be false alarms (`forbid`). A case is *exact* when the
report has one of `must_any`, all of `must_all` and none of `forbid`.

`--cross-validate` treats the set as a validation set, as a developer must: the cases are
grouped by the public repository they come from (read from the set's README), and a small grid
of the thresholds that decide the table is calibrated on some repositories and scored on the
others, two ways: split-half (alternate repositories) and leave-one-repository-out. When the
held-out scores match the default settings' score, the defaults are not tuned to a few cases.

`--perturb` rewrites every case in ways that leave a careful engineer's label unchanged (steps
in other units or offset, every other point logged, a random tenth of the points missing,
validation counted in epochs next to training's batches) and
counts the verdicts that change: a rule that flips when a run is logged half as often is tuned
to the exact points it was shown, which is what held-out runs punish.

Demo variants come from `python demo/generate.py --out DIR --seed-offset N` (real training
with new data and initialisation); each run must get the code `demo/expected.json` gives it and
none of the severities it forbids.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import re
import sys
import zlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tb_lossdoctor.engine import diagnose  # noqa: E402
from tb_lossdoctor.grouping import group_series  # noqa: E402
from tb_lossdoctor.readers.logdir import read_logdir  # noqa: E402
from tb_lossdoctor.series import Series  # noqa: E402
from tb_lossdoctor.settings import Settings  # noqa: E402
from tb_lossdoctor.step_units import UNIT_RATIO  # noqa: E402

REALWORLD = ROOT.parent / "shared" / "realworld"
# The thresholds the cross-validation calibrates: those that decide the train/validation table.
GRID = {
    "val_keeps_up": (0.3, 0.5, 0.7),
    "regression_noise": (2.0, 3.0, 4.0),
    "trend_z": (2.0, 2.5, 3.0),
}


def load_cases(folder: Path) -> Tuple[dict, Dict[str, list]]:
    """(labels, {case: series}) with every case read once (TensorBoard's Python reader)."""
    labels = json.loads((folder / "labels.json").read_text())
    series = {}
    for case in sorted(labels):
        got, _problems, _ = read_logdir(str(folder / case), reader="python")
        series[case] = got
    return labels, series


def repositories(folder: Path, cases: Sequence[str]) -> Dict[str, str]:
    """{case: source repository}, from the table of the set's README (`owner/name @ commit`)."""
    text = (folder / "README.md").read_text()
    out = {}
    for line in text.splitlines():
        m = re.match(r"\|\s*`([^`]+)`\s*\|[^|]*\|\s*([\w.-]+/[\w.-]+)\s*@", line)
        if m:
            out[m.group(1)] = m.group(2)
    return {case: out.get(case, case) for case in cases}


def codes_and_verdict(report: dict) -> Tuple[set, str]:
    codes = {f["code"] for run in report["runs"] for f in run["findings"]}
    verdicts = sorted({str(run.get("verdict")) for run in report["runs"]})
    return codes, "+".join(verdicts) or "-"


def judge(label: dict, codes: set) -> Tuple[bool, bool]:
    """(exact, false alarm) of one case."""
    hit = bool(set(label["must_any"]) & codes) and set(label.get("must_all", [])) <= codes
    alarm = bool(set(label["forbid"]) & codes)
    return hit and not alarm, alarm


def score(labels: dict, series: dict, settings: Settings, cases: Sequence[str]) -> Dict[str, Tuple[bool, bool]]:
    out = {}
    for case in cases:
        codes, _ = codes_and_verdict(diagnose(series[case], settings))
        out[case] = judge(labels[case], codes)
    return out


def merit(results: Dict[str, Tuple[bool, bool]]) -> float:
    """Exact cases, a false alarm counting against twice (it costs trust on a healthy run)."""
    return sum(e for e, _ in results.values()) - 2 * sum(a for _, a in results.values())


def grid_settings() -> List[Settings]:
    names = list(GRID)
    return [dataclasses.replace(Settings(), **dict(zip(names, values)))
            for values in itertools.product(*(GRID[n] for n in names))]


def cross_validate(labels: dict, series: dict, repo_of: Dict[str, str]) -> dict:
    """Held-out exact / false-alarm counts for split-half and leave-one-repository-out."""
    grid = grid_settings()
    cases = sorted(labels)
    table = [score(labels, series, s, cases) for s in grid]  # each setting scored once per case

    def best_on(train_cases) -> int:
        # Ties go to the setting closest to the defaults (fewest thresholds moved).
        return max(range(len(grid)), key=lambda i: (merit({c: table[i][c] for c in train_cases}), -moved(grid[i])))

    repos = sorted(set(repo_of.values()))
    halves = [[r for i, r in enumerate(repos) if i % 2 == k] for k in (0, 1)]
    split = {"exact": 0, "alarms": 0, "n": 0, "chosen": []}
    for k in (0, 1):
        calibrate = [c for c in cases if repo_of[c] in halves[k]]
        check = [c for c in cases if repo_of[c] in halves[1 - k]]
        i = best_on(calibrate)
        split["chosen"].append(_describe(grid[i]))
        split["exact"] += sum(table[i][c][0] for c in check)
        split["alarms"] += sum(table[i][c][1] for c in check)
        split["n"] += len(check)
    loro = {"exact": 0, "alarms": 0, "n": 0, "chosen": Counter()}
    for repo in repos:
        held = [c for c in cases if repo_of[c] == repo]
        i = best_on([c for c in cases if repo_of[c] != repo])
        loro["chosen"][_describe(grid[i])] += 1
        loro["exact"] += sum(table[i][c][0] for c in held)
        loro["alarms"] += sum(table[i][c][1] for c in held)
        loro["n"] += len(held)
    return {"repositories": len(repos), "split_half": split, "leave_one_repository_out": loro}


def moved(settings: Settings) -> int:
    """How many calibrated thresholds differ from the defaults."""
    return sum(getattr(settings, n) != getattr(Settings(), n) for n in GRID)


def _describe(settings: Settings) -> str:
    return ", ".join(f"{n}={getattr(settings, n)}" for n in GRID)


def _keep(s: Series, keep: np.ndarray) -> Series:
    """The series with only the points `keep` selects (series of 12 points or fewer untouched:
    thinning them would change what there is to see, not how it was logged)."""
    if s.steps.size <= 12:
        return s
    return dataclasses.replace(s, steps=s.steps[keep], values=s.values[keep], wall_times=s.wall_times[keep])


def _every_other(s: Series) -> Series:
    n = s.steps.size
    return _keep(s, np.arange(n) % 2 == (n - 1) % 2)  # the last point is always kept


def _drop_tenth(seed: int) -> Callable[[Series], Series]:
    def drop(s: Series) -> Series:
        rng = np.random.default_rng([seed, zlib.crc32(f"{s.run}:{s.tag}".encode())])
        keep = rng.random(s.steps.size) >= 0.1
        keep[0] = keep[-1] = True
        return _keep(s, keep)
    return drop


PERTURBATIONS: Dict[str, Callable[[Series], Series]] = {
    "steps x10": lambda s: dataclasses.replace(s, steps=s.steps * 10),
    "steps +1000": lambda s: dataclasses.replace(s, steps=s.steps + 1000),
    "every other point": _every_other,
    **{f"a tenth dropped ({seed})": _drop_tenth(seed) for seed in range(6)},
}


def validation_in_epochs(series: List[Series]) -> List[Series]:
    """Every validation curve logged at the global step re-counted 0, 1, 2... (the epoch
    number, as a custom loop's `add_scalar("val/loss", v, epoch)` writes it); wall times kept."""
    val = {(c.series.run, c.series.tag) for g in group_series(series) for p in g.pairs for c in p.curves
           if c.role == "val"}
    return [dataclasses.replace(s, steps=np.arange(s.steps.size))
            if (s.run, s.tag) in val and s.steps.size >= 2 and s.steps[-1] >= UNIT_RATIO * s.steps.size else s
            for s in series]


def perturbed(labels: dict, series: dict, cases: Sequence[str]) -> List[Tuple[str, int, int, List[str]]]:
    """(perturbation, exact, false alarms, [case: verdict before -> after]) for each perturbation."""
    before = {case: codes_and_verdict(diagnose(series[case]))[1] for case in cases}
    rows = []
    changes = {name: (lambda ss, c=change: [c(s) for s in ss]) for name, change in PERTURBATIONS.items()}
    changes["validation counted in epochs"] = validation_in_epochs
    for name, change in changes.items():
        exact = alarms = 0
        flips = []
        for case in cases:
            codes, verdict = codes_and_verdict(diagnose(change(series[case])))
            e, a = judge(labels[case], codes)
            exact, alarms = exact + e, alarms + a
            if verdict != before[case]:
                flips.append(f"{case}: {before[case]} -> {verdict}{'' if e else ' (miss)'}{' (FALSE ALARM)' if a else ''}")
        rows.append((name, exact, alarms, flips))
    return rows


def demo_variants(folders: Sequence[str]) -> List[Tuple[str, str, str, bool]]:
    """(variant, run, codes, right) for every run of every generated demo variant."""
    expected = json.loads((ROOT / "demo" / "expected.json").read_text())
    rows = []
    for folder in folders:
        series, problems, _ = read_logdir(folder, reader="python")
        report = diagnose(series, problems=problems)
        for run in report["runs"]:
            want = expected.get(run["run"])
            if want is None:
                continue
            codes = {f["code"] for f in run["findings"]}
            severities = {f["severity"] for f in run["findings"]}
            right = bool(set(want["expected"]) & codes) and not severities & set(want["forbidden_severities"])
            rows.append((Path(folder).name, run["run"], ",".join(sorted(codes)), right))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labelled", default=str(REALWORLD), help="folder with labels.json (default ../shared/realworld)")
    ap.add_argument("--cross-validate", action="store_true", help="repository-level calibration checks")
    ap.add_argument("--demo", nargs="*", default=[], help="folders of generated demo variants")
    ap.add_argument("--perturb", action="store_true", help="verdicts under label-preserving changes of the logging")
    args = ap.parse_args(argv)

    folder = Path(args.labelled)
    if (folder / "labels.json").is_file():
        labels, series = load_cases(folder)
        cases = sorted(labels)
        results, confusion = {}, defaultdict(Counter)
        print("| case | wanted | verdict | codes | |\n|---|---|---|---|---|")
        for case in cases:
            codes, verdict = codes_and_verdict(diagnose(series[case]))
            exact, alarm = results[case] = judge(labels[case], codes)
            wanted = " or ".join(labels[case]["must_any"])
            confusion[wanted][verdict] += 1
            mark = "ok" if exact else ("FALSE ALARM" if alarm else "miss")
            print(f"| {case} | {wanted} | {verdict} | {','.join(sorted(codes))} | {mark} |")
        n = len(cases)
        exact = sum(e for e, _ in results.values())
        alarms = sum(a for _, a in results.values())
        print(f"\nlabelled set: exact {exact}/{n} ({exact / n:.0%}), false alarms {alarms}/{n}\n")
        print("| wanted (any of) | reported verdict: count |\n|---|---|")
        for wanted, got in sorted(confusion.items()):
            print(f"| {wanted} | {', '.join(f'{v}: {k}' for v, k in got.most_common())} |")
        if args.cross_validate:
            cv = cross_validate(labels, series, repositories(folder, cases))
            s, lo = cv["split_half"], cv["leave_one_repository_out"]
            print(f"\n{cv['repositories']} repositories, grid of {len(grid_settings())} settings")
            print(f"split-half (calibrate on alternate repositories, score the others): exact "
                  f"{s['exact']}/{s['n']}, false alarms {s['alarms']}; chosen: {s['chosen']}")
            print(f"leave-one-repository-out: exact {lo['exact']}/{lo['n']}, false alarms "
                  f"{lo['alarms']}; chosen: {dict(lo['chosen'])}")
        if args.perturb:
            rows = perturbed(labels, series, cases)
            print("\n| perturbation | exact | false alarms | verdicts changed |\n|---|---|---|---|")
            for name, exact, alarms, flips in rows:
                print(f"| {name} | {exact}/{len(cases)} | {alarms} | {len(flips)}: {'; '.join(flips)} |")
            total = sum(len(r[3]) for r in rows)
            print(f"\nverdicts changed by a perturbation: {total} of {len(rows) * len(cases)}")
    else:
        print(f"no labels.json in {folder}: labelled set skipped")
    if args.demo:
        rows = demo_variants(args.demo)
        print("\n| variant | run | codes | right |\n|---|---|---|---|")
        for variant, run, codes, right in rows:
            print(f"| {variant} | {run} | {codes} | {'yes' if right else 'NO'} |")
        print(f"\ndemo variants: {sum(r[3] for r in rows)}/{len(rows)} right")
    return 0


if __name__ == "__main__":
    sys.exit(main())
