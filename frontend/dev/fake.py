"""Fake report + series for developing the Diagnosis tab without the real backend.

Modes: demo (one run per finding code, hostile names, sampled, problems), empty, unrecognised,
trainonly, scale (10,000 run groups), noseries (demo report, series route 404), error (report 500).
"""
from __future__ import annotations

import math
import random

HOSTILE = '<img src=x onerror=alert(1)>'


def curve(kind: str, role: str, n: int = 300, seed: int = 0):
    rnd = random.Random(hash((kind, role, seed)) & 0xFFFFFFFF)
    steps = list(range(0, n * 10, 10))
    vals = []
    for i in range(n):
        t = i / n
        base = 2.3 * math.exp(-4 * t) + 0.2
        if kind == "overfitting" and role == "val":
            base = 2.3 * math.exp(-6 * t) + 0.35 + max(0, t - 0.35) * 1.5
        elif kind == "overfitting":
            base = 2.3 * math.exp(-5 * t) + 0.05
        elif kind == "nan":
            base = 2.3 * math.exp(-3 * t) + 0.3 + (0 if t < 0.6 else (t - 0.6) ** 2 * 1e4)
            if t > 0.8:
                base = float("nan")
        elif kind == "blowup":
            base = base if t < 0.5 else base * 40
        elif kind == "not_learning":
            base = 2.302
        elif kind == "oscillation":
            base = 1.5 + 0.8 * math.sin(i / 3)
        elif kind == "spikes" and i in (90, 91, 180):
            base *= 6
        elif kind == "plateau":
            base = 1.4 + 0.6 * math.exp(-20 * t)
        elif kind == "data_problem":
            base = 2.0 if role == "train" else base
        elif kind == "diverging":
            base = 0.8 + t * 2 + (0.1 if role == "val" else 0)
        elif kind == "slow_convergence":
            base = 2.3 - 0.4 * t
        if role == "val" and kind not in ("overfitting", "diverging"):
            base = base * 1.08 + 0.05
        noise = 0.02 * rnd.gauss(0, 1) * (base if isinstance(base, float) and math.isfinite(base) else 1)
        vals.append(base + noise if math.isfinite(base) else base)
    if role == "val":  # validation logged once per 5 train points
        steps, vals = steps[::5], vals[::5]
    return steps, vals


FINDINGS = {
    "nan": ("error", "Loss became NaN at step 2,400", "The training loss was finite up to step 2,390 (last value 3.2e+05) and NaN from step 2,400 on.", ["Lower the learning rate (try 10x smaller).", "Add gradient clipping (clipnorm=1.0).", "Check the data for NaN or infinite inputs and labels."]),
    "blowup": ("error", "Loss ran away at step 1,500", "The loss jumped from its best of 0.41 to 16.4 (40x) at step 1,500 and did not come back.", ["Lower the learning rate or add warm-up.", "Add gradient clipping."]),
    "diverging": ("error", "Training and validation loss both rise", "Both losses rose steadily from 0.8 to 2.8 over 3,000 steps.", ["Lower the learning rate.", "Check the sign of the loss and the optimizer setup."]),
    "not_learning": ("error", "Loss has not moved since the start", "The loss stayed at 2.302 (= ln 10, chance level for 10 classes) for all 3,000 steps.", ["Check that the learning rate is not zero.", "Check that the labels match the inputs.", "Look for dead ReLUs or a bad initialisation."]),
    "oscillation": ("warning", "Loss oscillates without a downward trend", "The loss swings between 0.7 and 2.3 with no trend over the last 2,000 steps.", ["Lower the learning rate.", "Increase the batch size."]),
    "overfitting": ("warning", "Overfitting from step 1,050 (best validation loss 0.52)", "Training loss kept falling (0.41 → 0.06) while validation loss rose 0.52 → 1.35 after step 1,050.", ["Stop at the best step (early stopping, patience ~5 epochs).", "Add regularisation: dropout, weight decay or data augmentation.", "Get more training data."]),
    "data_problem": ("warning", "Training loss is flat while validation loss falls", "Training loss stayed at 2.0 while validation loss fell 2.5 → 0.27.", ["Check that the training data is shuffled and labelled like the validation data."]),
    "plateau": ("warning", "Both losses flat at a poor level", "Loss has stayed near 1.40 for 2,500 steps.", ["Try a larger model or a learning-rate schedule."]),
    "slow_convergence": ("warning", "Loss falls very slowly", "The loss fell only 17% over 3,000 steps at a steady rate.", ["Raise the learning rate (try 3-10x).", "Check for a too-small learning rate schedule."]),
    "spikes": ("warning", "3 transient loss spikes", "The loss spiked up to 6x its running level at steps 900, 910 and 1,800, and recovered each time.", ["Check for bad batches.", "Add gradient clipping."]),
    "still_learning": ("info", "Still learning: both losses still falling", "Validation loss fell 4% over the last 10% of training.", ["Train for longer."]),
    "converged": ("info", "Converged", "Curves flattened after an 88% improvement.", []),
}


def group(name, kind, *, keras=True, code=None, hostile_tag=False):
    code = code or kind
    series = []
    if keras:
        series.append({"run": f"{name}/train", "tag": "epoch_loss", "role": "train", "metric": "loss", "points": 300})
        series.append({"run": f"{name}/validation", "tag": "epoch_loss", "role": "val", "metric": "loss", "points": 60})
    else:
        series.append({"run": name, "tag": "loss", "role": "train", "metric": "loss", "points": 300})
    findings = []
    if code in FINDINGS:
        sev, title, summary, advice = FINDINGS[code]
        key = {"nan": 2400, "blowup": 1500, "overfitting": 1050, "spikes": 900, "oscillation": 1000,
               "data_problem": 0, "plateau": 500, "diverging": 0, "not_learning": 0,
               "slow_convergence": 0, "still_learning": 2700, "converged": 2000}[code]
        rng = {"nan": [2300, 2400], "overfitting": [1050, 2990], "blowup": [1400, 1600], "spikes": [900, 1800]}.get(code, [key, 2990])
        findings.append({
            "code": code, "severity": sev, "title": title, "summary": summary, "metric": "loss",
            "tags": [series[0]["run"] + ":" + series[0]["tag"]] + ([series[1]["run"] + ":" + series[1]["tag"]] if len(series) > 1 and code in ("overfitting", "data_problem", "diverging") else []),
            "step": key, "step_range": rng, "evidence": {"last_finite_value": 3.2e5} if code == "nan" else {},
            "advice": advice, "confidence": 0.9,
        })
    if code == "nan":  # several findings: nan plus blowup before it
        sev, title, summary, advice = FINDINGS["blowup"]
        findings.append({"code": "blowup", "severity": sev, "title": "Loss ran away at step 1,800 before becoming NaN", "summary": summary, "metric": "loss",
                         "tags": [series[0]["run"] + ":" + series[0]["tag"]], "step": 1800, "step_range": [1800, 2390], "advice": advice, "confidence": 0.8})
    worst = max((("info", "warning", "error").index(f["severity"]) + 1 for f in findings), default=0)
    status = "ok" if worst <= 1 else ("warning" if worst == 2 else "error")
    return {"run": name, "status": status, "series": series, "findings": findings, "_kind": kind}


def order(runs):
    r = {"ok": 0, "warning": 2, "error": 3}
    return sorted(runs, key=lambda g: (-r[g["status"]], g["run"]))


def strip(runs):
    return [{k: v for k, v in g.items() if not k.startswith("_")} for g in runs]


def report(mode: str) -> dict:
    base = {"version": 1, "generated_at": "2026-11-27T10:00:00Z", "runs": [], "problems": [], "sampled": False}
    if mode == "empty":
        return base
    if mode == "unrecognised":
        base["problems"] = []
        base["ignored"] = [{"run": "mnist", "tag": "learning_rate"}, {"run": "mnist", "tag": "gpu_mem"}]
        return base
    if mode == "trainonly":
        runs = [group("cifar_sgd", "still_learning", keras=False), group("cifar_adam", "overfitting", keras=False, code="spikes")]
        base["runs"] = strip(order(runs))
        return base
    if mode == "scale":
        kinds = list(FINDINGS)
        runs = [group(f"sweep/trial_{i:05d}_lr{10 ** -(i % 5):g}", kinds[i % len(kinds)], keras=bool(i % 2)) for i in range(10000)]
        base["runs"] = strip(order(runs))
        return base
    runs = [group(k, k) for k in FINDINGS]
    runs.append(group("healthy_baseline", "converged", code="none"))
    runs.append(group(HOSTILE, "spikes"))
    runs.append(group("exp:2026-11-27:lr=0.1", "overfitting", code="overfitting"))
    runs.append(group("tiny_run", "converged", keras=False, code="still_learning"))
    base["runs"] = strip(order(runs))
    base["sampled"] = True
    base["problems"] = [
        {"run": "broken_run", "tag": "loss", "reason": "no finite values"},
        {"run": HOSTILE, "tag": "<b>acc</b>", "reason": "only 1 point"},
    ]
    return base


KINDS = {}


def _index(mode):
    if mode not in KINDS:
        KINDS[mode] = {}
        if mode in ("empty", "unrecognised", "error"):
            return KINDS[mode]
        for g in (order([group(f"sweep/trial_{i:05d}_lr{10 ** -(i % 5):g}", list(FINDINGS)[i % len(FINDINGS)], keras=bool(i % 2)) for i in range(10000)]) if mode == "scale" else None) or []:
            for s in g["series"]:
                KINDS[mode][(s["run"], s["tag"])] = (g["_kind"], s["role"])
        if mode != "scale":
            r = report("demo" if mode in ("live", "noseries") else mode)
            kinds = {g["run"]: g for g in ([group(k, k) for k in FINDINGS] + [group("healthy_baseline", "converged", code="none"), group(HOSTILE, "spikes"), group("exp:2026-11-27:lr=0.1", "overfitting"), group("tiny_run", "converged", keras=False, code="still_learning"), group("cifar_sgd", "still_learning", keras=False), group("cifar_adam", "overfitting", keras=False, code="spikes")])}
            for g in r["runs"]:
                for s in g["series"]:
                    KINDS[mode][(s["run"], s["tag"])] = (kinds[g["run"]]["_kind"], s["role"])
    return KINDS[mode]


def series(mode: str, run: str, tag: str):
    hit = _index(mode).get((run, tag))
    if hit is None:
        return None
    steps, vals = curve(hit[0], hit[1])

    def enc(v):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return v

    return {"run": run, "tag": tag, "steps": steps, "values": [enc(v) for v in vals]}
