"""What to try, per finding code: the product's own words, from the diagnostic checklist."""

from __future__ import annotations

from typing import Dict, List

ADVICE: Dict[str, List[str]] = {
    "nan": [
        "Lower the learning rate: bisect between the current value and 1/100 of it until the run stays finite.",
        "Compute the loss from logits with a numerically stable op (log-softmax / from_logits=True) instead of exp() followed by log().",
        "Check the inputs and labels for NaN or Inf, and any division or log that can see zero.",
        "Gradient clipping can keep the run alive, but treat it as a stop-gap: find what overflowed.",
    ],
    "blowup": [
        "Lower the peak learning rate (or lengthen the warm-up); bisect between 1/3 and 1/10 of it.",
        "Resume from the checkpoint before the blow-up instead of training on from the damaged weights.",
        "Clip gradients by global norm while you look for the cause, and check for bad batches at that step.",
    ],
    "diverging": [
        "Check the sign of the loss and of the update: a steadily rising training loss often means the optimiser is climbing.",
        "Lower the learning rate by 10x and compare.",
        "Revisit the architecture and hyper-parameters, and look for corrupt or mislabelled data.",
    ],
    "not_learning": [
        "Check that gradients reach the weights: a learning rate of zero, frozen layers, or a detached loss all look like this.",
        "Dead ReLUs: try LeakyReLU, zero-initialised biases and He initialisation.",
        "Verify the input pipeline: the same batch every step, all-zero inputs or shuffled-away labels give a flat loss.",
        "Try a larger learning rate (x10) in case updates are simply too small to show.",
    ],
    "oscillation": [
        "Lower the learning rate (try /3, then /10) or add a decay schedule.",
        "Increase the batch size to average out gradient noise, or add momentum warm-up.",
        "Check the data is shuffled: ordered batches make the loss swing from one kind of example to another.",
    ],
    "overfitting": [
        "Stop at the best validation step (early stopping) and keep that checkpoint.",
        "Regularise: dropout, weight decay, data augmentation or input noise.",
        "Get more training data, or use a smaller network.",
    ],
    "data_problem": [
        "Check the training labels and preprocessing: the training data seems much harder or noisier than the validation data.",
        "Compare the train and validation distributions, and look for leakage between them.",
        "Check that augmentation is not destroying the signal in the training batches.",
    ],
    "plateau": [
        "Lower the learning rate (or add a decay schedule) to get past the plateau.",
        "Try a smaller batch size.",
        "If the level is poor, the network may be too small for the task: add layers or units.",
        "Check the last layer's activation matches the loss (no ReLU on a regression output).",
    ],
    "slow_convergence": [
        "Raise the learning rate: try 3x and 10x the current value.",
        "More momentum or a learning-rate range test can find a faster, still-stable setting.",
    ],
    "spikes": [
        "Look at the batches at the spike steps: outliers or corrupt examples are common causes.",
        "Gradient clipping or a slightly lower learning rate smooths rare spikes.",
    ],
    "still_learning": [
        "Train longer: the curves have not flattened yet.",
    ],
    "converged": [
        "Nothing to fix. To go further, change the model or the data rather than training longer.",
    ],
    "too_early": [
        "Let the run go on: judge the trend after more evaluations.",
    ],
}


def advice_for(code: str, *specific: str) -> List[str]:
    """The specific, evidence-based advice first, then the general list for the code."""
    return [line for line in specific if line] + list(ADVICE.get(code, []))
