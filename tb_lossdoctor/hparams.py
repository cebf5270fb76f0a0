"""Hyperparameters of a run group: from its name, from TensorBoard's HParams records, from its
learning-rate curve. Pure functions: names, decoded records and arrays in, {name: value} out.

Values are `float` (numbers), `str` (categories) or `bool` (flags). Three sources, merged with
`merge` (a recorded value wins over the name, which wins over the curve):

- **HParams records** (`hparams` plugin `session_start_info`, written by Keras/TF `hp.hparams`,
  `hp.KerasCallback`, PyTorch's `SummaryWriter.add_hparams` and Lightning's `log_hyperparams`):
  the readers decode them with TensorBoard's own `hparams.metadata` (`readers/hparams_records.py`);
  `assign_records` attaches each record to the run group it belongs to (`add_hparams` writes into
  a timestamped sub-folder of the run).
- **Run names** (`parse_name`, `name_hparams`): `lr=0.01`, `lr_1e-3`, `bs32`, `Depth=4`,
  `Momentum-0.9`, `dropout0.5`, `seed_3`, `100epochs`, `10k` (thousands), optimiser and activation
  names (`Adam`, `SGD+Mom`, `relu`). Assumptions, kept conservative so that a name never invents a
  setting: a number glued to a word (`bs32`) counts only for a known key (`GLUED_KEYS`), since
  `resnet50`, `yolov8`, `hw04` or `v15` are names, not settings; identifiers (`version_3`, `run1`,
  `exp2`) and timestamps are skipped. Words left over ("free words") become a setting only across
  a set of names (`name_hparams`): when each name keeps at most one free word after the words all
  names share are removed, one word gives a flag (`starved`: yes/no) and several give a
  categorical `variant` (`Aug`, `L2`, `Original`).
- **Learning-rate curve** (`lr_curve_hparams`): its peak, its final value and the warm-up length
  (steps until it first reaches 99% of its peak, when it started below half of it).
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

Value = Union[float, str, bool]
HParams = Dict[str, Value]

SOURCE_RECORD, SOURCE_NAME, SOURCE_CURVE = "hparams", "name", "lr_curve"

# Canonical names of the usual keys (lower-case, separators removed -> canonical).
KEY_ALIASES = {
    "lr": "lr", "learningrate": "lr", "initlr": "lr",
    "bs": "batch_size", "batch": "batch_size", "batchsize": "batch_size",
    "optimizer": "optimizer", "optimiser": "optimizer", "opt": "optimizer", "optim": "optimizer",
    "wd": "weight_decay", "weightdecay": "weight_decay",
    "drop": "dropout", "dropout": "dropout", "dropoutrate": "dropout",
    "mom": "momentum", "momentum": "momentum",
    "filter": "filters", "filters": "filters", "nfilters": "filters",
    "depth": "depth", "layers": "layers", "nlayers": "layers", "numlayers": "layers",
    "width": "width", "hidden": "hidden", "hiddenunits": "hidden", "units": "units",
    "heads": "heads", "epochs": "epochs", "epoch": "epochs", "ep": "epochs",
    "steps": "steps", "warmup": "warmup_steps", "warmupsteps": "warmup_steps",
    "seed": "seed", "activation": "activation", "act": "activation",
}
# Keys a number may be glued to (`bs32`, `lr0.01`, `sigma30`, `Depth4`, `n1024`, `k8`).
GLUED_KEYS = set(KEY_ALIASES) | {
    "sigma", "beta", "gamma", "alpha", "lambda", "lam", "temp", "tau", "eps", "clip", "decay",
    "dim", "emb", "embed", "size", "n", "k", "l1", "l2", "reg", "rate", "noise", "bits", "ch",
    "channels", "kernel", "stride", "patch", "res", "scale", "fold", "rep", "trial",
}
# A number written before one of these words names it (`100epochs`, `500steps`, `4layers`).
UNIT_WORDS = {"epochs": "epochs", "epoch": "epochs", "ep": "epochs", "steps": "steps",
              "layers": "layers", "heads": "heads", "units": "units", "filters": "filters"}
# Keys that repeat a setting rather than change it.
SEED_KEYS = {"seed", "rep", "repeat", "replica", "trial", "fold"}
# Identifiers: their number tells runs apart but is not a setting.
ID_WORDS = {"version", "v", "run", "exp", "experiment", "id", "job", "trial_id", "ver", "r"}
# Split words a group name may still carry: never keys.
SPLIT_WORDS = {"train", "training", "val", "valid", "validation", "eval", "test", "dev"}

OPTIMIZERS = {
    "sgd": "SGD", "sgdm": "SGD+Mom", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop",
    "adagrad": "Adagrad", "adadelta": "Adadelta", "adamax": "Adamax", "nadam": "Nadam",
    "radam": "RAdam", "lamb": "LAMB", "lars": "LARS", "lion": "Lion", "ftrl": "FTRL",
    "adafactor": "Adafactor", "sophia": "Sophia", "lbfgs": "LBFGS",
}
OPTIMIZER_MODIFIERS = {"mom": "Mom", "momentum": "Momentum", "nesterov": "Nesterov"}
ACTIVATIONS = {
    "relu": "ReLU", "gelu": "GELU", "tanh": "tanh", "sigmoid": "sigmoid", "elu": "ELU",
    "selu": "SELU", "leakyrelu": "LeakyReLU", "swish": "swish", "silu": "SiLU", "mish": "Mish",
    "prelu": "PReLU", "softplus": "softplus",
}

_NUM = r"(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?"
_NUM_RE = re.compile(rf"^(?P<num>{_NUM})(?P<mult>[kKM])?$")
_GLUED_RE = re.compile(rf"^(?P<key>[A-Za-z]+?)(?P<num>{_NUM})(?P<mult>[kKM])?$")
_UNIT_RE = re.compile(rf"^(?P<num>{_NUM})(?P<unit>[A-Za-z]+)$")
_KV_RE = re.compile(r"^(?P<key>[A-Za-z][A-Za-z0-9_]*?)\s*=\s*(?P<value>.+)$")
_WORD_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
# Chunk separators; `-` inside an exponent (`1e-3`) and `.` inside a number are kept.
_EXPONENT_RE = re.compile(r"(?<=\d)[eE]-(?=\d)")
_KEY_EQ_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\s*=")
_SEPARATORS_RE = re.compile(r"[_\s,;()\[\]+\-]+")
_HASH_RE = re.compile(r"^(?=[a-z]*\d)(?=\d*[a-z])[0-9a-f]{7,}$")
_MULT = {"k": 1e3, "K": 1e3, "M": 1e6}
LR_KEYS = {"lr", "peak_lr", "final_lr", "init_lr", "learning_rate", "base_lr", "max_lr"}


@lru_cache(maxsize=65536)
def canonical_key(key: str) -> str:
    """`Learning_Rate` -> `lr`, `Depth` -> `depth`, `model_params/learn_illum` unchanged."""
    squashed = re.sub(r"[\s_\-.]", "", key.lower())
    if squashed in KEY_ALIASES:
        return KEY_ALIASES[squashed]
    return key if "/" in key else key.lower()


def is_seed_key(key: str) -> bool:
    return canonical_key(key) in SEED_KEYS


def number(text: str) -> Optional[float]:
    """`0.01`, `1e-3`, `32`, `10k` (thousands), `1M`; None for anything else."""
    m = _NUM_RE.match(text)
    if not m:
        return None
    value = float(m.group("num")) * _MULT.get(m.group("mult") or "", 1.0)
    return value if math.isfinite(value) else None


def _chunks(segment: str) -> List[str]:
    """`Adam-Depth=4-Filter=48` -> [Adam, Depth=4, Filter=48]; `lr_1e-3` -> [lr, 1e-3];
    `SGD+Mom` -> [SGD, Mom]; `learning_rate=0.01` -> [learning_rate=0.01]."""
    text = _EXPONENT_RE.sub(lambda m: m.group(0).replace("-", "\x01"), segment)
    text = _KEY_EQ_RE.sub(lambda m: m.group(0).replace("_", "\x02"), text)
    return [c.replace("\x01", "-").replace("\x02", "_") for c in _SEPARATORS_RE.split(text) if c]


class ParsedName:
    """What one run name says: keyed values and the free words left over (original case)."""

    __slots__ = ("values", "words")

    def __init__(self) -> None:
        self.values: HParams = {}
        self.words: List[str] = []


@lru_cache(maxsize=65536)  # names repeat across reports (the plugin rebuilds them); read-only
def parse_name(name: str) -> ParsedName:
    """Keyed settings and free words of one run-group name (every path segment). The answer is
    shared between callers: read it, never change it."""
    out = ParsedName()
    for segment in name.split("/"):
        _parse_chunks(_chunks(segment), out)
    return out


def _parse_chunks(chunks: List[str], out: ParsedName) -> None:
    i = 0
    while i < len(chunks):
        chunk = chunks[i]
        nxt = chunks[i + 1] if i + 1 < len(chunks) else None
        kv = _KV_RE.match(chunk)
        if kv:
            _key_value(kv.group("key"), kv.group("value"), out)
        elif nxt is not None and _WORD_RE.match(chunk) and number(nxt) is not None and _is_key(chunk):
            _set(out, chunk, nxt)
            i += 1
        elif not _glued(chunk, out) and not _unit(chunk, out):
            i += _word(chunk, chunks[i + 1:], out)
        i += 1


def _key_value(key: str, value: str, out: ParsedName) -> None:
    """`learning_rate=0.01` (a known key with underscores), `resnet50_lr=0.1` (words, then the
    key `lr`)."""
    words = key.split("_")
    if len(words) > 1 and re.sub(r"[\s_\-.]", "", key.lower()) not in KEY_ALIASES:
        for word in words[:-1]:
            if not _glued(word, out) and not _unit(word, out):
                _word(word, [], out)
        key = words[-1]
    _set(out, key, value)


def _is_key(word: str) -> bool:
    """A word that names the number after it (`lr_1e-3`, `Momentum-0.9`, `seed_3`): a known key
    (`resnet_50`, `sweep-2024-05` are names), or an identifier (`run_2`, skipped)."""
    low = word.lower()
    return low in GLUED_KEYS or low in ID_WORDS


def _set(out: ParsedName, key: str, raw: str) -> None:
    canon = canonical_key(key)
    if canon in ID_WORDS:
        return
    value = number(raw)
    if value is not None:
        out.values[canon] = value
    elif canon == "optimizer":
        out.values[canon] = OPTIMIZERS.get(raw.lower(), raw)
    else:
        out.values[canon] = raw


def _glued(chunk: str, out: ParsedName) -> bool:
    m = _GLUED_RE.match(chunk)
    if not m:
        return False
    key = m.group("key").lower()
    if key in ID_WORDS:
        return True  # `run1`, `v15`, `exp2`: an identifier, skipped
    if key not in GLUED_KEYS:
        return False
    _set(out, key, m.group("num") + (m.group("mult") or ""))
    return True


def _unit(chunk: str, out: ParsedName) -> bool:
    m = _UNIT_RE.match(chunk)
    if not m or m.group("unit").lower() not in UNIT_WORDS:
        return False
    _set(out, UNIT_WORDS[m.group("unit").lower()], m.group("num"))
    return True


def _word(chunk: str, rest: List[str], out: ParsedName) -> int:
    """Record a word; returns how many of the following chunks it used (an optimiser's
    modifier: `SGD+Mom`, but not `SGD_Momentum-0.9`, where the number makes it a key)."""
    low = chunk.lower()
    if number(chunk) is not None or _HASH_RE.match(low) or not re.search(r"[A-Za-z]", chunk):
        return 0  # a bare number, a timestamp or a hash
    if low in OPTIMIZERS:
        out.values["optimizer"] = OPTIMIZERS[low]
        modifier = rest[0].lower() if rest else ""
        if modifier in OPTIMIZER_MODIFIERS and (len(rest) < 2 or number(rest[1]) is None):
            out.values["optimizer"] += "+" + OPTIMIZER_MODIFIERS[modifier]
            return 1
    elif low in ACTIVATIONS:
        out.values["activation"] = ACTIVATIONS[low]
    elif low not in ID_WORDS:
        out.words.append(chunk)
    return 0


def name_hparams(names: Sequence[str]) -> Dict[str, HParams]:
    """{name: settings its name states} for a set of run-group names: `parse_name`'s keyed
    values plus what `free_word_hparams` finds."""
    out = {n: dict(parse_name(n).values) for n in names}
    for n, extra in free_word_hparams(names).items():
        for key, value in extra.items():
            out[n].setdefault(key, value)
    return out


def free_word_hparams(names: Sequence[str]) -> Dict[str, HParams]:
    """Settings a set of names states by plain words ({} when it states none): the names must
    share a word or a key (`tf_hw06_Aug`, `tf_hw06_L2`; `n1024_sigma10_starved`, `n2400_sigma80`:
    a designed set, not unrelated runs) and, once the words they all share are removed, keep at
    most one word each. One distinct word is a flag (`starved`: True/False), several a
    categorical `variant`."""
    if len(names) < 2:
        return {}
    parsed = {n: parse_name(n) for n in names}
    lowered = {n: [w.lower() for w in p.words] for n, p in parsed.items()}
    common = set.intersection(*(set(ws) for ws in lowered.values()))
    if not common and not set.intersection(*(set(p.values) for p in parsed.values())):
        return {}
    free = {n: [w for w in parsed[n].words if w.lower() not in common] for n in names}
    if any(len(ws) > 1 for ws in free.values()) or not any(free.values()):
        return {}
    distinct = {ws[0].lower(): ws[0] for ws in free.values() if ws}
    if len(distinct) == 1:
        word = next(iter(distinct.values())).lower()
        return {n: {word: bool(free[n])} for n in names}
    return {n: {"variant": free[n][0] if free[n] else "(none)"} for n in names}


def record_values(hparams_map) -> HParams:
    """{name: value} of a decoded `session_start_info.hparams` map (protobuf `Value`s), in name
    order: a protobuf map's own order differs between processes, and the report must not."""
    out: HParams = {}
    for key in sorted(hparams_map):
        value = hparams_map[key]
        kind = value.WhichOneof("kind")
        if kind == "number_value":
            if math.isfinite(value.number_value):
                out[key] = float(value.number_value)
        elif kind == "string_value":
            out[key] = value.string_value
        elif kind == "bool_value":
            out[key] = bool(value.bool_value)
    return out


def assign_records(records: Mapping[str, HParams], groups: Iterable[str]) -> Dict[str, HParams]:
    """Attach HParams records ({TensorBoard run: values}) to run groups: a record belongs to the
    group of the same name, or else to its nearest ancestor folder that is a group (PyTorch's
    `add_hparams` writes into `RUN/<time.time()>`). Records with no group are dropped; several
    records of one group are merged (sorted by run, later ones win)."""
    groups = set(groups)
    out: Dict[str, HParams] = {}
    for run in sorted(records):
        target = record_group(run, groups)
        if target is not None:
            out.setdefault(target, {}).update(records[run])
    return out


def record_group(run: str, groups) -> Optional[str]:
    """The run group a record written in `run` belongs to, or None."""
    if run in groups and not is_record_child(run, groups):
        return run
    parts = [p for p in run.split("/") if p not in ("", ".")]
    while parts:
        parts.pop()
        candidate = "/".join(parts) or "."
        if candidate in groups:
            return candidate
    return None


_TIMESTAMP_RE = re.compile(r"^\d{9,}(?:\.\d+)?$")


def is_record_child(run: str, groups) -> bool:
    """True for the `RUN/<time.time()>` folder `add_hparams` writes its record (and the metric
    values passed to it) into, when RUN itself is a run group: that folder is not a training run."""
    parent, _, last = run.rpartition("/")
    return bool(parent) and bool(_TIMESTAMP_RE.match(last)) and parent in groups


def lr_curve_hparams(steps: np.ndarray, values: np.ndarray) -> HParams:
    """{peak_lr, final_lr, warmup_steps} of a logged learning-rate curve ({} when it holds no
    finite positive value). Warm-up: the steps from the first point until the curve first
    reaches 99% of its peak, counted only when it started below half of the peak; else 0."""
    values = np.asarray(values, dtype=np.float64)
    steps = np.asarray(steps)
    finite = np.isfinite(values)
    if not finite.any():
        return {}
    v, s = values[finite], steps[finite]
    peak = float(v.max())
    if peak <= 0:
        return {}
    warmup = 0.0
    if v[0] < 0.5 * peak:
        first = int(np.argmax(v >= 0.99 * peak))
        warmup = float(s[first] - s[0])
    return {"peak_lr": _round(peak), "final_lr": _round(float(v[-1])), "warmup_steps": warmup}


def _round(x: float) -> float:
    """Six significant digits: a curve logged in float32 gives 0.0010000000474974513."""
    return float(f"{x:.6g}")


def merge(*layers: Tuple[str, Mapping[str, Value]]) -> Tuple[HParams, Dict[str, str]]:
    """Merge (source, values) layers, earlier layers winning: ({name: value}, {name: source}).
    Names are canonicalised (`learning_rate` and `lr` are one setting)."""
    values: HParams = {}
    sources: Dict[str, str] = {}
    for source, layer in layers:
        for key, value in (layer or {}).items():
            canon = canonical_key(key)
            if canon not in values:
                values[canon] = value
                sources[canon] = source
    return values, sources


def format_value(value: Value) -> str:
    """`0.001`, `32`, `Adam`, `yes`: how a value is shown in every view."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    return str(value)
