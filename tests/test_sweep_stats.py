"""The cross-run statistics on constructed verdict tables: what is claimed, with which runs, and
what is not claimed (unclean cuts, unrelated runs, single runs, runs with no setting)."""

from __future__ import annotations

import math

from tb_lossdoctor.codes import SEVERITY
from tb_lossdoctor.sweep import analyse, split_chance, Column, Row


def run(name, outcome, best=None, sources=None, **hp):
    """A report run entry: `outcome` is a verdict or a fatal event (nan, blowup)."""
    fatal = outcome in ("nan", "blowup")
    sev = "error" if fatal else SEVERITY[outcome]
    entry = {
        "run": name,
        "status": "ok" if sev == "info" else sev,
        "verdict": None if fatal else outcome,
        "findings": [{"code": outcome, "severity": sev}],
        "hparams": hp,
        "hparam_sources": sources or {k: "name" for k in hp},
    }
    if best is not None:
        entry["validation_best"] = {"metric": "loss", "direction": "min", "step": best[0], "value": best[1]}
    return entry


def texts(sweep):
    return [f["text"] for f in sweep["findings"]]


def test_a_clean_learning_rate_threshold():
    lrs = [1.0, 0.3, 0.1, 0.1, 0.01, 0.003, 0.001, 0.001, 0.0003, 0.0001]
    outcomes = ["nan", "diverging", "nan", "diverging", "converged", "converged", "still_learning",
                "converged", "slow_convergence", "slow_convergence"]
    runs = [run(f"r{i}", o, lr=lr) for i, (lr, o) in enumerate(zip(lrs, outcomes))]
    sweep = analyse(runs)
    first = sweep["findings"][0]
    assert first["text"].startswith(
        "All 4 runs with lr >= 0.1 diverged or went NaN; none of the 6 with lr <= 0.01 did.")
    assert first["outcome"] == "unstable" and first["codes"] == ["nan", "diverging"]
    assert sorted(first["matching"]) == ["r0", "r1", "r2", "r3"] and first["support"] == 10
    assert math.isclose(first["chance"], round(2 / math.comb(10, 4), 4))
    # The slow runs sit at the other end: a second, separate cut.
    assert any(t.startswith("Both runs with lr <= 0.0003 converged slowly; none of the 8 with lr >= 0.001 did.")
               for t in texts(sweep))


def test_a_categorical_cut_and_its_counts():
    runs = [run(f"rms{i}", "oscillation", optimizer="RMSprop", lr=0.01) for i in range(3)]
    runs += [run(f"adam{i}", "converged", optimizer="Adam", lr=0.01) for i in range(3)]
    sweep = analyse(runs)
    (finding,) = [f for f in sweep["findings"] if f["kind"] == "categorical"]
    assert finding["text"].startswith("optimizer RMSprop: 3 of 3 oscillated; Adam: 0 of 3.")
    assert finding["chance"] == 0.1  # 2 of the C(6, 3) = 20 ways to pick 3 runs are this clean
    assert [g["label"] for g in finding["groups"]] == ["optimizer = RMSprop", "optimizer = Adam"]


def test_no_claim_when_the_cut_is_not_clean():
    runs = [run("a", "nan", lr=0.1), run("b", "converged", lr=0.1), run("c", "nan", lr=0.01),
            run("d", "converged", lr=0.001)]
    sweep = analyse(runs)
    # No split: lr = 0.1 holds a NaN and a converged run. Those two repeat one setting.
    assert texts(sweep) == ["At lr=0.1: 1 of 2 repeats went NaN, 1 of 2 repeats converged."]
    assert {r["label"] for r in sweep["families"][0]["table"]["rows"]} == {"0.1", "0.01", "0.001"}


def test_a_category_of_single_runs_restates_the_verdicts_and_is_not_a_split():
    runs = [run("a", "nan", optimizer="SGD"), run("b", "converged", optimizer="Adam"),
            run("c", "converged", optimizer="AdamW")]
    assert not [f for f in analyse(runs)["findings"] if f["kind"] == "categorical"]


def test_a_monotone_trend_of_the_best_validation_step():
    runs = [run("d2", "overfitting", best=(40, 0.50), depth=2.0),
            run("d4", "overfitting", best=(22, 0.45), depth=4.0),
            run("d8", "overfitting", best=(10, 0.52), depth=8.0)]
    sweep = analyse(runs)
    (trend,) = [f for f in sweep["findings"] if f["kind"] == "trend"]
    assert trend["text"].startswith("The higher the depth, the earlier validation loss is at its best "
                                    "(depth 2: step 40, 4: step 22, 8: step 10).")
    assert trend["chance"] == round(2 / 6, 4) and trend["support"] == 3
    # The best value is not monotone (0.50, 0.45, 0.52): no trend claimed for it.
    assert trend["outcome"] == "validation_best_step"


def test_seeds_show_how_stable_a_verdict_is():
    runs = [run("lr0.1_s1", "blowup", lr=0.1, seed=1.0), run("lr0.1_s2", "blowup", lr=0.1, seed=2.0),
            run("lr0.1_s3", "converged", lr=0.1, seed=3.0)]
    runs += [run(f"lr0.01_s{i}", "converged", lr=0.01, seed=float(i)) for i in (1, 2, 3)]
    sweep = analyse(runs)
    seeds = [f for f in sweep["findings"] if f["kind"] == "seeds"]
    assert [f["text"] for f in seeds] == ["At lr=0.1: 2 of 3 seeds blew up, 1 of 3 seeds converged."]
    assert seeds[0]["runs"] == ["lr0.1_s1", "lr0.1_s2", "lr0.1_s3"]
    # One seed survived at lr=0.1, so the learning rate does not cut the blow-ups cleanly.
    assert not [f for f in sweep["findings"] if f["kind"] == "split"]


def test_agreeing_seeds_are_said_to_agree():
    runs = [run(f"a{i}", "converged", lr=0.01, seed=float(i)) for i in range(3)]
    runs += [run(f"b{i}", "nan", lr=1.0, seed=float(i)) for i in range(3)]
    sweep = analyse(runs)
    assert "Every setting run with several seeds got one verdict across them (2 settings, 6 runs)." in texts(sweep)


def test_confounded_settings_are_named():
    runs = [run("a", "not_learning", depth=4.0, filters=48.0, optimizer="Adam"),
            run("b", "overfitting", depth=4.0, filters=48.0, optimizer="RMSprop"),
            run("c", "still_learning", depth=2.0, filters=12.0, optimizer="SGD")]
    sweep = analyse(runs)
    split = next(f for f in sweep["findings"] if f["kind"] == "split")
    assert split["text"].startswith("Both runs with depth = 4 failed (not_learning, overfitting); "
                                    "the run with depth = 2 did not.")
    assert split["confounded_with"] == ["filters", "optimizer"]
    assert "Confounded: filters and optimizer separate the same runs" in split["text"]
    # a and b differ in the optimiser alone, with different failures.
    pair = next(f for f in sweep["findings"] if f["kind"] == "pair")
    assert pair["runs"] == ["a", "b"] and "differ in optimizer alone" in pair["text"]


def test_a_learning_rate_curve_echoing_the_setting_is_not_a_confounder():
    runs = [run(f"r{i}", o, sources={"lr": "hparams", "peak_lr": "lr_curve"}, lr=lr, peak_lr=lr)
            for i, (lr, o) in enumerate([(0.5, "nan"), (0.3, "nan"), (0.01, "converged"), (0.001, "converged")])]
    split = analyse(runs)["findings"][0]
    assert split["hyperparameter"] == "lr" and split["confounded_with"] == []


def test_a_baseline_comparison():
    runs = [run(f"tf_hw06_{v}", o, variant=v) for v, o in
            [("Original", "overfitting"), ("Aug", "still_learning"), ("L2", "converged"), ("all", "overfitting")]]
    (base,) = analyse(runs)["findings"]
    assert base["kind"] == "baseline"
    assert base["text"].startswith("Against variant Original (overfitting): Aug -> still_learning; "
                                   "L2 -> converged; all: overfitting as well")


def test_nothing_for_unrelated_runs_single_runs_or_no_setting():
    # Different experiments that declare different settings are never compared.
    unrelated = [run("mnist_lr0.1", "nan", lr=0.1), run("cifar_bs32", "converged", batch_size=32.0),
                 run("gan_dropout0.5", "oscillation", dropout=0.5)]
    assert analyse(unrelated) is None
    assert analyse([run("only", "nan", lr=0.1)]) is None
    no_setting = [dict(run(n, "converged"), hparams={}) for n in ("a", "b", "c")]
    assert analyse(no_setting) is None
    # A learning rate read off a curve never makes a sweep on its own.
    curves = [run(n, o, sources={"peak_lr": "lr_curve"}, peak_lr=lr)
              for n, o, lr in [("a", "nan", 1.0), ("b", "converged", 0.01), ("c", "converged", 0.001)]]
    assert analyse(curves) is None


def test_two_sweeps_in_one_logdir_are_analysed_apart():
    a = [run(f"a{i}", o, lr=lr) for i, (lr, o) in enumerate([(1.0, "nan"), (0.1, "converged"), (0.01, "converged")])]
    b = [run(f"b{i}", o, batch_size=bs) for i, (bs, o) in enumerate([(8.0, "oscillation"), (64.0, "converged"), (256.0, "converged")])]
    sweep = analyse(a + b)
    assert [sorted(f["runs"]) for f in sweep["families"]] == [["a0", "a1", "a2"], ["b0", "b1", "b2"]]
    for finding in sweep["findings"]:
        assert {r[0] for r in finding["runs"]} in ({"a"}, {"b"})


def test_the_table_holds_every_run_once_per_hyperparameter():
    runs = [run(f"r{i}", o, lr=lr, optimizer=opt) for i, (lr, opt, o) in enumerate(
        [(0.1, "SGD", "nan"), (0.01, "SGD", "converged"), (0.1, "Adam", "oscillation"), (0.01, "Adam", "converged")])]
    table = analyse(runs)["families"][0]["table"]
    assert table["outcomes"] == ["nan", "oscillation", "converged"]
    for name in ("lr", "optimizer"):
        rows = [r for r in table["rows"] if r["hyperparameter"] == name]
        assert sorted(x for r in rows for x in r["runs"]) == ["r0", "r1", "r2", "r3"]
        assert all(sorted(x for c in r["cells"].values() for x in c) == r["runs"] for r in rows)


def test_many_values_are_binned_in_the_table():
    runs = [run(f"r{i:02d}", "converged" if i % 3 else "nan", lr=10 ** (-i / 5)) for i in range(20)]
    rows = analyse(runs)["families"][0]["table"]["rows"]
    assert len(rows) == 5 and sum(len(r["runs"]) for r in rows) == 20


def test_chance_of_a_clean_cut():
    rows = [Row(n, "x", False, {}, {}) for n in "abcd"]
    numeric = Column("lr", "number", {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0})
    assert split_chance(numeric, rows, 1) == 2 / 4  # the lowest or the highest of 4
    assert split_chance(numeric, rows, 2) == 2 / 6
    category = Column("opt", "text", {"a": "x", "b": "x", "c": "y", "d": "z"})
    assert split_chance(category, rows, 2) == 2 / 6  # {a, b} or {c, d}
