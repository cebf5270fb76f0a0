"""Across runs, on real sweeps: the demo sweeps (real training, hyperparameters in HParams records
written by Keras' `hp.KerasCallback` and in PyTorch's `add_hparams` layout) and the real sweeps of
../shared/realworld (read in place, gathered into one logdir of symbolic links). Each statement
tested here was first read off the curves (numbers in the docstrings). Also: nothing is claimed
for unrelated runs, and the JSON, the text and the Markdown views say the same thing, through the
CLI and through TensorBoard's own app with both data providers.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import os
from pathlib import Path

import pytest

from tb_lossdoctor import cli
from tb_lossdoctor.formatting import clean

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = ROOT / "demo" / "sweeps"
KERAS = [f"keras_lr_optimizer/run-{i}" for i in range(8)]
TORCH = [f"torch_warmup_peak/Dec02_10-{i:02d}-00_demo" for i in range(9)]


def lossdoctor(logdir, fmt="json", reader="auto"):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main([str(logdir), "--format", fmt, "--reader", reader])
    assert code == 0, out.getvalue()[-2000:]
    return json.loads(out.getvalue()) if fmt == "json" else out.getvalue()


def finding(sweep, start):
    found = [f for f in sweep["findings"] if f["text"].startswith(start)]
    assert len(found) == 1, [f["text"] for f in sweep["findings"]]
    return found[0]


def linked(tmp_path, names):
    """A logdir of symbolic links {link name: folder of ../shared/realworld} (read in place)."""
    from conftest import REALWORLD

    logdir = tmp_path / "sweep"
    logdir.mkdir()
    for link, folder in names.items():
        os.symlink(REALWORLD / folder, logdir / link, target_is_directory=True)
    return logdir


@pytest.fixture(scope="module")
def demo_sweeps():
    if not any(SWEEPS.rglob("events.out.tfevents*")):
        pytest.skip("demo/sweeps has not been generated")
    return SWEEPS


@pytest.fixture(scope="module", params=["server", "python"])
def demo_report(request, demo_sweeps):
    return lossdoctor(demo_sweeps, reader=request.param)


# -- the demo sweeps ------------------------------------------------------------------------------


def test_keras_sweep_reads_the_hparams_records(demo_report):
    """run-N holds only hp.KerasCallback's record; its curves are in run-N/train and /validation."""
    runs = {r["run"]: r for r in demo_report["runs"]}
    for i, (opt, lr) in enumerate([(o, lr) for o in ("Adam", "SGD") for lr in (0.001, 0.01, 0.3, 1.0)]):
        run = runs[KERAS[i]]
        assert run["hparams"]["optimizer"] == opt and run["hparams"]["lr"] == lr
        assert run["hparam_sources"]["optimizer"] == run["hparam_sources"]["lr"] == "hparams"
    # The record-only folders are not reported as unreadable.
    assert not [p for p in demo_report["problems"] if p["run"] in KERAS]


def test_keras_sweep_high_learning_rates_fail(demo_report):
    """Read off the curves (epoch_loss, validation): lr 0.3 swings 0.66-1.54 (Adam) and
    0.30-1.04 (SGD) with no trend; lr 1.0 jumps to 22.9 (Adam) and sits at 1.65 ~ ln 5 after
    epoch 1, SGD climbs 1.35 -> 1.64 and stays; lr 0.001 and 0.01 fall steadily (Adam 0.01:
    1.03 -> 0.108, flat from epoch 5; SGD 0.001: 1.63 -> 1.38, still falling)."""
    sweep = demo_report["sweep"]
    split = finding(sweep, "All 4 runs with lr >= 0.3 failed (blowup, not_learning, oscillation); "
                           "none of the 4 with lr <= 0.01 did.")
    assert sorted(split["matching"]) == [KERAS[i] for i in (2, 3, 6, 7)]
    assert sorted(split["runs"]) == KERAS and split["confounded_with"] == []
    outcome = {r["run"]: r["outcome"] for r in sweep["runs"]}
    # lr 1.0 with Adam: 22.9 at epoch 0, then 1.65 with accuracy 0.19 on 5 classes: chance.
    assert [outcome[KERAS[i]] for i in (2, 3, 6, 7)] == ["oscillation", "not_learning", "oscillation", "blowup"]
    assert all(outcome[KERAS[i]] in ("still_learning", "converged") for i in (0, 1, 4, 5))


def test_torch_sweep_blows_up_at_the_highest_peak_whatever_the_seed(demo_report):
    """Read off the curves: at peak 0.9 Loss/train falls to 0.57-0.81 by step 100-150, then
    jumps to 1.3-1.65 (ln 5 = 1.61) as the warm-up reaches the peak and stays there, for all
    three seeds; peaks 0.05 and 0.3 end at a validation loss of 0.17-0.19 and 0.069-0.077."""
    sweep = demo_report["sweep"]
    split = finding(sweep, "All 3 runs with lr = 0.9 blew up; none of the 6 with lr <= 0.3 did.")
    assert sorted(split["matching"]) == TORCH[6:] and sorted(split["runs"]) == TORCH
    seeds = finding(sweep, "Every setting run with several seeds got one verdict across them")
    assert "(3 settings, 9 runs)" in seeds["text"] and sorted(seeds["runs"]) == TORCH


def test_torch_sweep_records_come_from_the_add_hparams_folder(demo_report):
    runs = {r["run"]: r for r in demo_report["runs"]}
    for i, run in enumerate(TORCH):
        assert runs[run]["hparams"]["lr"] == (0.05, 0.3, 0.9)[i // 3]
        assert runs[run]["hparams"]["seed"] == 1 + i % 3
        assert runs[run]["hparam_sources"]["lr"] == "hparams"
        assert runs[run]["hparam_sources"]["peak_lr"] == "lr_curve"  # the logged `lr` curve
    sweep = demo_report["sweep"]
    in_sweep = {r["run"] for r in sweep["runs"]}
    # add_hparams' RUN/<time.time()> folders (its record and metric scalar) belong to their run:
    # no run group of their own, in the sweep or out of it.
    children = [r for r in runs if r.startswith("torch_warmup_peak/") and r.count("/") == 2]
    assert children == [] and in_sweep >= set(TORCH)
    # The curve's peak only echoes the recorded lr: not a separate column.
    torch_family = next(f for f in sweep["families"] if f["name"] == "torch_warmup_peak/")
    assert torch_family["hyperparameters"] == ["lr", "seed"]


def test_two_sweeps_in_one_logdir_stay_apart(demo_report):
    sweep = demo_report["sweep"]
    assert sorted(sorted(f["runs"]) for f in sweep["families"]) == [KERAS, TORCH]
    for f in sweep["findings"]:
        assert set(f["runs"]) <= set(KERAS) or set(f["runs"]) <= set(TORCH), f["text"]


# -- the real sweeps of ../shared/realworld ----------------------------------------------------------


HW04 = {n: f"tf_hw04_{n}" for n in ("Adagrad", "Adam", "RMSprop", "SGD_Momentum-0.0", "SGD_Momentum-0.9")}


def test_hw04_optimisers(realworld_dir, tmp_path):
    """The original folder names (Homework04/logs/SUB_1). Read off the curves: RMSprop's
    training loss falls to 0.050 at step 26 and jumps to 0.74-0.82 by step 50 (the only blow-up);
    the other four overfit (validation best at steps 69, 6, 82 and 15, then rising)."""
    sweep = lossdoctor(linked(tmp_path, HW04))["sweep"]
    assert [h["name"] for h in sweep["hyperparameters"]] == ["momentum", "optimizer"]
    opt = finding(sweep, "optimizer RMSprop: 1 of 1 blew up; SGD: 0 of 2, Adagrad: 0 of 1, Adam: 0 of 1.")
    assert opt["matching"] == ["RMSprop"] and opt["chance"] == 0.6  # one run: weak, and it says so
    assert "chance alone gives a cut this clean 60% of the time" in opt["text"]
    table = {(r["hyperparameter"], r["label"]): r["cells"] for r in sweep["families"][0]["table"]["rows"]}
    assert table[("optimizer", "SGD")] == {"overfitting": ["SGD_Momentum-0.0", "SGD_Momentum-0.9"]}
    assert table[("optimizer", "RMSprop")] == {"blowup": ["RMSprop"]}


@pytest.mark.parametrize("names", [
    {"tf_lena_Adam-Depth4-Filter48": "tf_lena_Adam-Depth4-Filter48",
     "tf_lena_RMSprop-Depth4-Filter48": "tf_lena_RMSprop-Depth4-Filter48",
     "tf_lena_SGD_Mom-Depth2-Filter12": "tf_lena_SGD_Mom-Depth2-Filter12"},
    {"Adam-Depth=4-Filter=48": "tf_lena_Adam-Depth4-Filter48",  # the names in the source repository
     "RMSprop-Depth=4-Filter=48": "tf_lena_RMSprop-Depth4-Filter48",
     "SGD+Mom-Depth=2-Filter=12": "tf_lena_SGD_Mom-Depth2-Filter12"},
], ids=["shared-names", "original-names"])
def test_lena_grid_is_confounded(realworld_dir, tmp_path, names):
    """Read off the curves: Adam (depth 4, 48 filters) sits at 2.303 = ln 10 throughout; RMSprop
    (depth 4, 48 filters) trains 1.72 -> 0.66 while validation swings 0.72-1.54 around 0.95;
    SGD+Mom (depth 2, 12 filters) falls steadily, 2.08 -> 1.31 on validation. Both deep runs
    failed, but depth, filters and optimiser all changed together."""
    sweep = lossdoctor(linked(tmp_path, names))["sweep"]
    by_folder = {v: k for k, v in names.items()}
    split = finding(sweep, "Both runs with depth = 4 failed (not_learning, overfitting); "
                           "the run with depth = 2 did not.")
    assert split["confounded_with"] == ["filters", "optimizer"]
    assert "Confounded: filters and optimizer separate the same runs" in split["text"]
    assert sorted(split["matching"]) == sorted(by_folder[f] for f in (
        "tf_lena_Adam-Depth4-Filter48", "tf_lena_RMSprop-Depth4-Filter48"))
    pair = next(f for f in sweep["findings"] if f["kind"] == "pair")
    assert "differ in optimizer alone: with optimizer = Adam it did not learn, " \
           "with optimizer = RMSprop it overfit." in pair["text"]


def test_hw06_regularisation_variants_against_the_original(realworld_dir, tmp_path):
    """Read off the validation curves: Original bottoms at 0.646 (step 10) and ends 0.67-0.76
    while training falls to 0.34; Aug still falls (0.88 at step 12); L2's validation jumps
    around 0.63-0.72 over its last epochs but fell along with training over a longer window;
    DenseMode (best 0.619 at 10, ends 0.766), Normalisation (best 0.629 at 7, ends 0.889) and
    all (never below its first 2.73) overfit like the original."""
    names = {f"tf_hw06_{v}": f"tf_hw06_{v}" for v in ("Aug", "DenseMode", "L2", "Normalisation", "Original", "all")}
    sweep = lossdoctor(linked(tmp_path, names))["sweep"]
    assert [h["name"] for h in sweep["hyperparameters"]] == ["variant"]
    (base,) = sweep["findings"]
    assert base["text"].startswith("Against variant Original (overfitting): Aug -> still_learning; "
                                   "L2 -> still_learning; DenseMode, Normalisation, all: overfitting as well")
    assert "a single run per value cannot tell a setting from chance" in base["text"]


@pytest.mark.parametrize("names, flag", [
    ({n: n for n in ("pl_cowsip_sigma10_starved", "pl_cowsip_sigma30", "pl_cowsip_sigma30_starved",
                     "pl_cowsip_sigma80")}, "starved"),
    ({"n1024_k8_sigma10_photonstarved": "pl_cowsip_sigma10_starved",  # the source repository's names
      "n1024_k8_sigma30": "pl_cowsip_sigma30",
      "n1024_k8_sigma30_photonstarved": "pl_cowsip_sigma30_starved",
      "n2400_k8_sigma80": "pl_cowsip_sigma80"}, "photonstarved"),
], ids=["shared-names", "original-names"])
def test_cowsip_photon_starved_runs_fail(realworld_dir, tmp_path, names, flag):
    """Read off the curves: sigma 10 photon-starved: validation stays at 23-35 (no progress);
    sigma 30 photon-starved: NaN from step 742,749 on; sigma 30 and 80 not starved: validation
    20.6 -> 0.78 and 5.6 -> 1.8, flat at the end. The two sigma-30 runs differ in starvation alone."""
    logdir = linked(tmp_path, names)
    report = lossdoctor(logdir)
    sweep = report["sweep"]
    by_folder = {v: k for k, v in names.items()}
    split = finding(sweep, f"{flag} yes: 2 of 2 failed (nan, plateau); no: 0 of 2.")
    assert sorted(split["matching"]) == sorted(by_folder[f] for f in ("pl_cowsip_sigma10_starved",
                                                                     "pl_cowsip_sigma30_starved"))
    assert split["controlled_pairs"] == [sorted([by_folder["pl_cowsip_sigma30"],
                                                 by_folder["pl_cowsip_sigma30_starved"]])]
    # The one run with a Lightning HParams record: its sigma comes from it (and agrees with its name).
    starved30 = next(r for r in report["runs"] if r["run"] == by_folder["pl_cowsip_sigma30_starved"])
    assert starved30["hparam_sources"]["sigma"] == "hparams" and starved30["hparams"]["sigma"] == 30.0
    assert starved30["hparams"]["loss_id"] == "mae" and len(starved30["hparams"]) > 25


# -- nothing for unrelated runs ------------------------------------------------------------------------


def test_the_demo_pathologies_are_unrelated_runs(demo_logdir):
    report = lossdoctor(demo_logdir)
    assert report["sweep"] is None
    assert "Across runs" not in lossdoctor(demo_logdir, "text")
    assert "Across runs" not in lossdoctor(demo_logdir, "markdown")


def test_unrelated_runs_beside_a_sweep_get_no_claim(realworld_dir, demo_logdir, tmp_path):
    logdir = linked(tmp_path, HW04)
    for run in os.listdir(demo_logdir):
        os.symlink(demo_logdir / run, logdir / run, target_is_directory=True)
    sweep = lossdoctor(logdir)["sweep"]
    assert [sorted(f["runs"]) for f in sweep["families"]] == [sorted(HW04)]
    assert all(set(f["runs"]) <= set(HW04) for f in sweep["findings"])
    assert {r["run"] for r in sweep["runs"]} == set(HW04)


# -- the views and the plugin agree with the JSON ---------------------------------------------------


def test_text_and_markdown_say_what_the_json_says(demo_sweeps):
    import cmarkgfm

    report = lossdoctor(demo_sweeps)
    sweep = report["sweep"]
    text = lossdoctor(demo_sweeps, "text")
    md = lossdoctor(demo_sweeps, "markdown")
    rendered = html.unescape(cmarkgfm.github_flavored_markdown_to_html(md))
    for f in sweep["findings"]:
        assert f"  * {clean(f['text'])}\n" in text
        assert f"<li>{html.unescape(f['text'])}</li>" in rendered.replace("\n", "")
    for family in sweep["families"]:
        table = family["table"]
        for row in table["rows"]:
            counts = ", ".join(f"{o} {len(row['cells'][o])}" for o in table["outcomes"] if o in row["cells"])
            assert f"{row['hyperparameter']} = {row['label']}" in text and counts in text
            cells = "".join(f"<td>{len(row['cells'].get(o, [])) or ''}</td>" for o in table["outcomes"])
            assert f"<td>{row['hyperparameter']}</td><td>{row['label']}</td>{cells}" in rendered.replace("\n", "")


@pytest.mark.parametrize("provider", ["python", "rust"])
def test_the_plugin_reports_the_same_sweep(demo_sweeps, provider):
    """TensorBoard's own app: the records come through its data provider's hparams metadata."""
    from tensorboard import default, program
    from tensorboard.backend import application
    from werkzeug.test import Client

    tb = program.TensorBoard(plugins=default.get_plugins())
    argv = ["", "--logdir", str(demo_sweeps)]
    argv += (["--load_fast", "false", "--reload_task", "blocking", "--reload_interval", "0"]
             if provider == "python" else ["--load_fast", "true", "--reload_interval", "1"])
    tb.configure(argv)
    data_provider, multiplexer = tb._make_data_provider()
    app = application.TensorBoardWSGIApp(tb.flags, tb.plugin_loaders, data_provider,
                                         tb.assets_zip_provider, multiplexer)
    client = Client(app)
    expected = lossdoctor(demo_sweeps)["sweep"]
    import time

    deadline = time.time() + 60
    while True:  # the data server loads in the background
        body = json.loads(client.get("/data/plugin/lossdoctor/report").get_data(as_text=True))
        if body.get("sweep") == expected or time.time() > deadline:
            break
        time.sleep(0.5)
    assert body["sweep"] == expected
