"""Mutation check of the engine: does the test suite catch deliberate bugs?

    python benchmarks/mutants.py              # every mutant, the engine-level tests
    python benchmarks/mutants.py --only 3 7   # some of them

Each mutant replaces one snippet of one module with a plausible bug. The package and the tests
are copied to a temporary folder (with `../shared` linked beside it, as in a clone), the mutant
is applied there, and the in-process test files below run against the copy; a mutant is
*caught* when at least one test fails. The working tree is never touched. Prints a Markdown
table for `benchmarks/README.md`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = [
    "tests/test_rules_synthetic.py", "tests/test_verdict_classes.py", "tests/test_trend.py",
    "tests/test_engine_properties.py", "tests/test_realworld_diagnosis.py",
    "tests/test_demo_diagnosis.py", "tests/test_naming.py",
]

# (module, original snippet, mutated snippet, what the bug is)
MUTANTS = [
    ("rules.py", "settings.not_learning_noise * st.noise + st.chance_improvement,",
     "settings.not_learning_noise * st.noise,", "learned: drop the chance-improvement term"),
    ("rules.py", "    if vd == FALLING and lags(vw, tw, settings):",
     "    if vd == FALLING:", "data problem: drop the guard that training lags validation"),
    ("views.py", "    sign = 1.0 if pair.is_loss else -1.0", "    sign = 1.0",
     "accuracy-like metrics not mirrored"),
    ("trend.py", "and abs(mann_kendall_z(y)) >= settings.rank_z", "",
     "trend: the rank test no longer has to agree"),
    ("rules.py", "    if n_after == 0 or (n_after < settings.patience and not sparse):",
     "    if n_after == 0:", "overfitting: no patience (one uptick after the best is enough)"),
    ("chance.py", "    return ChanceLevel(classes, value) if started_there or accuracy_agrees else None",
     "    return None", "chance level never recognised"),
    ("trend.py", "        if start == 0 or end == values.size or end - start > max_width:",
     "        if end - start > max_width:", "spikes: a rise at the end that never came back counts"),
    ("rules.py", "    if st.end < st.best + 0.5 * rise or np.mean(after_jump >= st.best + 0.5 * rise) < settings.blowup_stays:",
     "    if st.end < st.best + 0.5 * rise:", "blow-up: a curve that keeps coming back counts"),
    ("rules.py", "    return sorted(kept.values(), key=lambda f: (rank[f.severity], f.code not in EVENTS))",
     "    return sorted((f for f in kept.values() if f.code in EVENTS or f.severity != 'info'), "
     "key=lambda f: rank[f.severity])", "verdict: info verdicts dropped (events silence nothing, but converged vanishes)"),
    ("trend.py", "        keep = finite if stats.recovered_after_nonfinite else np.arange(values.size) < first_bad",
     "        keep = np.arange(values.size) < first_bad", "NaN: truncate at the first bad point instead of masking"),
    ("rules.py", "    return leader.change < 0 and follower.change <= settings.val_keeps_up * leader.change",
     "    return leader.change < 0", "keeps up: any improvement counts as keeping up"),
    ("rules.py", "    if td == FALLING and w.end > t.end and lags(tw, vw, settings):",
     "    if td == FALLING and lags(tw, vw, settings):", "overfitting: no generalisation gap needed"),
    ("rules.py", "    if closed is not None and closed < settings.plateau_gain:",
     "    if closed is not None and closed < 0.5:", "plateau: the old 'half the gap to zero' level rule"),
    ("naming.py", "        if role and not _tags_name_both_splits(tuple(tags)):",
     "        if role and len(parts[-1]) < 0:", "naming: run folders never name a split"),
    ("rules.py", "    if learned(t, settings) and (oscillating(w, settings) or (",
     "    if False and (oscillating(w, settings) or (", "oscillation: validation swings ignored"),
    ("rules.py", "    findings: List[Finding] = []\n    for index, pair in enumerate(group.pairs):",
     "    raise RuntimeError('mutant')\n    findings: List[Finding] = []\n    for index, pair in enumerate(group.pairs):",
     "every group's diagnosis raises (turned into a 'problem')"),
    ("rules.py", '    return next((f["code"] for f in findings if f["code"] not in EVENTS), None)',
     "    return None", "the run's verdict field is always null"),
    ("rules.py", "    return difference > settings.trend_z * float(np.hypot(leader.stderr, follower.stderr))",
     "    return difference > 0", "lags: no noise test on the widening gap"),
    ("trend.py", "    scatter = max(scatter, stats.smooth_noise / scale)\n", "",
     "trend: a short window's quiet residuals trusted"),
    ("rules.py", "    if not improved_beyond_noise(t, settings) or learned(w, settings):",
     "    if not learned(t, settings) or learned(w, settings):", "gap opened: any significant training drift counts"),
]


def make_copy(dest: Path) -> Path:
    """dest/project (package + tests + demo expectations) with dest/shared -> ../shared."""
    project = dest / "project"
    shutil.copytree(ROOT / "tb_lossdoctor", project / "tb_lossdoctor", ignore=shutil.ignore_patterns("static", "__pycache__"))
    shutil.copytree(ROOT / "tests", project / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "demo", project / "demo", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    shared = ROOT.parent / "shared"
    if shared.exists():
        os.symlink(shared, dest / "shared")
    return project


def run_tests(project: Path) -> bool:
    """True when the tests pass on the copy (the package imported from the copy, not the tree)."""
    env = {**os.environ, "PYTHONPATH": str(project), "PYTHONDONTWRITEBYTECODE": "1"}
    check = subprocess.run([sys.executable, "-c", "import tb_lossdoctor, sys; print(tb_lossdoctor.__file__)"],
                           cwd=project, env=env, capture_output=True, text=True)
    assert str(project) in check.stdout, f"the copy is not the package imported: {check.stdout}"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *TESTS],
                          cwd=project, env=env, capture_output=True, text=True)
    return proc.returncode == 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", type=int, help="mutant numbers (1-based)")
    args = ap.parse_args(argv)
    chosen = [(i, m) for i, m in enumerate(MUTANTS, 1) if not args.only or i in args.only]
    with tempfile.TemporaryDirectory() as tmp:
        project = make_copy(Path(tmp))
        if not run_tests(project):
            print("the unmutated copy fails its tests: fix that first")
            return 2
        rows = []
        for number, (module, old, new, what) in chosen:
            path = project / "tb_lossdoctor" / module
            original = path.read_text()
            if original.count(old) != 1:
                rows.append((number, what, "snippet not found (update the mutant)", 0.0))
                continue
            path.write_text(original.replace(old, new))
            started = time.perf_counter()
            caught = not run_tests(project)
            rows.append((number, what, "caught" if caught else "**missed**", time.perf_counter() - started))
            path.write_text(original)
            print(f"{number:2d} {'caught' if caught else 'MISSED'}  {what}", file=sys.stderr)
    print("| # | deliberate bug | result | seconds |\n|---|---|---|---|")
    for number, what, result, seconds in rows:
        print(f"| {number} | {what} | {result} | {seconds:.0f} |")
    caught = sum(r[2] == "caught" for r in rows)
    print(f"\n{caught} of {len(rows)} mutants caught by {', '.join(Path(t).name for t in TESTS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
