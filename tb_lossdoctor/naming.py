"""What a run or tag name says: its split (train / validation), its metric, and that metric's
direction.

Names are matched word by word after splitting on any separator (`/ _ - .`, spaces, brackets)
and lower-casing, so `Loss/train`, `train_loss`, `val-loss`, `epoch_loss` and `Train.Loss` all
parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Optional, Tuple

TRAIN_WORDS = {"train", "training", "trn"}
# Ordered by preference when a group has several validation-like curves of one metric.
VAL_WORDS = {
    "val": 0, "valid": 0, "validation": 0, "v": 1,
    "eval": 1, "evaluation": 1, "dev": 1,
    "test": 2, "testing": 2,
}
# Words that say how a value was aggregated or which axis it was plotted against.
AGGREGATION_WORDS = {
    "epoch", "step", "batch", "iter", "iters", "iteration", "iterations", "avg", "average",
    "mean", "vs", "per", "total", "running", "smoothed", "ema", "global",
    "samples", "tokens", "examples",  # the x axis (DeepSpeed's `Train/Samples/...`, Megatron's `vs tokens`)
}
LOSS_WORDS = {
    "loss", "losses", "nll", "mse", "mae", "rmse", "msle", "perplexity", "ppl", "error", "err",
    "cer", "wer", "crossentropy", "xent", "ce", "bce", "kl", "kld", "huber",
}
ACCURACY_PATTERN = re.compile(
    r"^(acc|acc\d+|accuracy|f1|fscore|auc|roc|auroc|auprc|precision|prec|recall|iou|miou|map\d*|"
    r"top\d+|topk|dice|bleu|rouge\w*|psnr|ssim|r2|kappa|mcc|ap\d*)$"
)
# Words of curves that are not learning curves, though they name a metric: its best value so far
# (`val/acc_best`, fairseq's `best_loss`, `min_val_loss`: flat by construction once the metric
# stops improving), mixed precision's loss scale (`loss_scale`: halved on every overflow, doubled
# after a quiet stretch; its jumps are the scaler working, not the model diverging) and a loss
# term's weight (`kl_weight`, `loss_coef`: a schedule the script sets, annealed up or down).
NOT_A_LEARNING_CURVE = {"best", "min", "max", "lowest", "highest", "weight", "coef", "coeff", "coefficient"}
# The loss scale's words: with nothing else, so `scale_invariant_loss` (depth estimation) stays.
_LOSS_SCALE_WORDS = {"loss", "scale", "scaler", "grad", "amp"}
# The losses of an adversarial game (a GAN's generator and discriminator, a critic) say which
# player is ahead, not whether a model fits its data: they need not fall, and the checklist's
# verdicts do not apply to them. `d`/`g` count only next to a loss word (`loss_D`, `g_loss`).
ADVERSARIAL_WORDS = {"adversarial", "adv", "gan", "discriminator", "disc", "generator", "gen", "critic"}
_PLAYERS = {"d", "g"}
# Optimiser settings other than the learning rate (see `is_learning_rate`).
_OPTIMISER_SETTINGS = {"momentum", "beta", "beta1", "beta2", "betas", "weight", "decay", "wd", "eps"}
# Lightning names the curves of several validation sets `val_loss/dataloader_idx_N`.
_DATALOADER_WORDS = {"dataloader", "idx"}
# Words of a penalty term: a loss component that trades off against the fit and may rise while
# the model learns (a VAE's KL term grows as the latent code carries information; a weight
# regulariser grows with the weights). It is checked for NaN, never read as a blow-up. Not `reg`:
# detectron2's `loss_box_reg` is a box regression loss.
PENALTY_WORDS = {"kl", "kld", "kullback", "regularization", "regularisation", "penalty"}
LR_PATTERN = re.compile(r"(^|[/_\-. ])(lr|learning[_\- ]?rate)($|[/_\-. ])", re.IGNORECASE)
# A Unix time in seconds (2001 to 2286), as `time.time()` names add_hparams' sub-folders.
_TIMESTAMP = re.compile(r"^1\d{9}(\.\d+)?$")
# TF1 makes a repeated summary name unique with a suffix: `loss_1` is the metric `loss`.
_TF1_UNIQUIFIED = re.compile(r"^(.*(?:loss|Loss|LOSS))_\d+$")
_SPLIT = re.compile(r"[/_\-.\s()\[\]:,@]+")  # `@`: timm's `acc@1`

# Aggregation suffixes TensorBoard users pair on, best first: the same aggregation as the other
# curve wins; otherwise an epoch-level curve is preferred to a per-step one.
AGGREGATION_PREFERENCE = ("", "epoch", "avg", "average", "mean", "step", "iter", "batch")


@dataclass(frozen=True)
class TagMeaning:
    """What a tag (in a given run) is: a metric curve of one split, or a learning-rate curve."""

    kind: str  # "metric" | "lr" | "ignored"
    metric: str = ""  # canonical metric name, e.g. "loss", "box_loss", "accuracy"
    direction: str = ""  # "min" (losses, errors) | "max" (accuracy-like)
    role: str = ""  # "train" | "val" | "" (no split word: decided by the group)
    val_rank: int = 0  # preference among validation-like words (val < eval < test)
    aggregation: str = ""  # "epoch", "step", "batch"... or ""


def words(name: str) -> list:
    """Lower-case words of a name, split on any separator and on camelCase boundaries."""
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z])", "_", name)
    return [w for w in _SPLIT.split(name.lower()) if w]


def split_of_run(run: str, tags: Iterable[str] = ()) -> Tuple[str, str, int]:
    """(group, role, val_rank) from a run path and the tags it holds.

    The last folder names a split when it is made of a split word plus, at most, metric and
    aggregation words: Keras' `X/train` + `X/validation`, PyTorch's `add_scalars` folders
    `X/Loss_train` + `X/Loss_val`, Estimator's `X/eval_validation`, `X/train_loss` +
    `X/test_loss`; the group is then the parent folder. A folder whose own tags name both
    training and validation curves is a run name, not a split (Ultralytics' `train`, `train2`).
    Any other run is its own group.
    """
    parts = [p for p in re.split(r"[/\\]", run) if p not in ("", ".")]
    if len(parts) > 1 and _TIMESTAMP.match(parts[-1]):
        # PyTorch's `SummaryWriter.add_hparams` writes its record and metrics into a sub-folder
        # named by `time.time()`: part of the run it describes, not a run of its own.
        return "/".join(parts[:-1]), "", 0
    if parts:
        role, rank = _folder_split(parts[-1])
        if role and not _tags_name_both_splits(tuple(tags)):
            return "/".join(parts[:-1]) or ".", role, rank
    return run, "", 0


@lru_cache(maxsize=65536)
def _folder_split(folder: str) -> Tuple[str, int]:
    """(role, val_rank) a folder name states, or ("", 0)."""
    roles, rank = set(), 0
    for token in words(folder):
        if token in TRAIN_WORDS:
            roles.add("train")
        elif token in VAL_WORDS and token != "v":
            roles.add("val")
            rank = max(rank, VAL_WORDS[token])
        elif not (token in AGGREGATION_WORDS or _metric_of([token])[0] or token.isdigit()):
            return "", 0  # another word: `resnet_train` is a run name
    if len(roles) != 1:
        return "", 0
    role = roles.pop()
    return role, rank if role == "val" else 0


@lru_cache(maxsize=4096)
def _tags_name_both_splits(tags: tuple) -> bool:
    roles = {parse_tag(tag).role for tag in tags}
    return {"train", "val"} <= roles


def group_key(run: str, tags: Iterable[str] = ()) -> str:
    """The run group a run belongs to (Keras' `X/train` and `X/validation` are group `X`)."""
    return split_of_run(run, tags)[0]


def is_learning_rate(tag: str) -> bool:
    """`lr`, `learning_rate`, Lightning's `lr-Adam`; not the other optimiser settings Lightning's
    LearningRateMonitor logs under the same prefix (`lr-SGD-momentum`, `lr-AdamW-weight_decay`)."""
    if not (LR_PATTERN.search(tag) or tag.lower().startswith("lr-")):
        return False
    return _OPTIMISER_SETTINGS.isdisjoint(words(tag))


@lru_cache(maxsize=65536)  # tag names repeat across runs; parsing is pure
def parse_tag(tag: str, run_role: str = "", run_val_rank: int = 0) -> TagMeaning:
    """Interpret a tag; `run_role` is the split implied by the run folder, if any."""
    if is_learning_rate(tag):
        return TagMeaning(kind="lr", metric="learning_rate")
    tokens = words(_TF1_UNIQUIFIED.sub(r"\1", tag))
    if NOT_A_LEARNING_CURVE.intersection(tokens):
        return TagMeaning(kind="ignored")
    role, val_rank, aggregation, rest = "", 0, "", []
    for i, token in enumerate(tokens):
        if token in _DATALOADER_WORDS or (token.isdigit() and i and tokens[i - 1] == "idx"):
            continue  # Lightning's `val_loss/dataloader_idx_0`: the first validation set's loss
        if token in TRAIN_WORDS:
            role = role or "train"
        elif token in VAL_WORDS and (token != "v" or i == 0):
            if role != "val" or VAL_WORDS[token] < val_rank:
                val_rank = VAL_WORDS[token]
            role = "val"
        elif token in AGGREGATION_WORDS:
            aggregation = aggregation or token
        else:
            rest.append(token)
    direction, metric = _metric_of(rest)
    if not direction or _adversarial(rest) or _is_loss_scale(rest):
        return TagMeaning(kind="ignored")
    if not role and run_role:
        role, val_rank = run_role, run_val_rank
    return TagMeaning("metric", metric, direction, role, val_rank, aggregation)


def _is_loss_scale(tokens: list) -> bool:
    """Mixed precision's loss scale (`loss_scale`, `amp/grad_scale`), named with nothing else."""
    return bool({"scale", "scaler"} & set(tokens)) and set(tokens) <= _LOSS_SCALE_WORDS


def _adversarial(tokens: list) -> bool:
    """Whether a loss's words (split and aggregation words removed) name a player of a game."""
    return not ADVERSARIAL_WORDS.isdisjoint(tokens) or (
        len(tokens) == 2 and not _PLAYERS.isdisjoint(tokens) and not LOSS_WORDS.isdisjoint(tokens))


def _metric_of(tokens: list) -> Tuple[str, str]:
    """(direction, canonical name) of the metric words, or ("", "") when they name no metric."""
    if not tokens:
        return "", ""
    normalised = ["accuracy" if t == "acc" else t for t in tokens]
    # A category word repeated in the name is a namespace (TF Object Detection's `Loss/total_loss`
    # is the loss, `Loss/classification_loss` the classification loss): keep its last place.
    normalised = [t for i, t in enumerate(normalised) if t.isdigit() or t not in normalised[i + 1:]]
    name = "_".join(normalised)
    if any(t in LOSS_WORDS for t in normalised) or "entropy" in name:
        return "min", name
    if any(ACCURACY_PATTERN.match(t) for t in normalised):
        return "max", name
    return "", ""


def is_penalty(metric: str) -> bool:
    """Whether a loss metric (as `parse_tag` names it) is a penalty term (`PENALTY_WORDS`)."""
    return not PENALTY_WORDS.isdisjoint(metric.split("_"))


def metric_label(direction: str) -> Tuple[str, str]:
    """Words for getting better / worse on a metric of this direction."""
    return ("falling", "rising") if direction == "min" else ("rising", "falling")


def describe_role(role: Optional[str]) -> str:
    """"training", "validation", or "" for a curve no split word names."""
    return {"train": "training", "val": "validation"}.get(role or "", "")
