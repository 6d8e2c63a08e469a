"""The evidence-based stopping criterion of Mahsereci, Balles, Lassner & Hennig (2017),
"Early stopping without a validation set", arXiv:1703.09580: a validation-free baseline that
is not spectral.

For a mini-batch of B samples, the D parameters' mini-batch gradient g (the mean of the B
per-sample gradients G_b) and its per-sample variance estimate

    S_k = sum_b (G_bk - g_k)^2 / (B - 1) = (sum_b G_bk^2 - B g_k^2) / (B - 1),

the criterion (their eq. 7, for plain gradient descent on the empirical risk) is

    EB = 1 - (B / D) sum_k g_k^2 / S_k,

and training stops once EB > 0: the gradient is then no larger than the noise that the finite
training set puts into it, so further steps fit the sample rather than the population.
Where the gradient is pure noise of variance s_k (an optimum), B g_k^2 / s_k is chi-square
with one degree of freedom, so EB is 0 on average with the true variance and, with the
estimate S_k (independent of g for Gaussian noise, E[1 / S_k] = (B - 1) / ((B - 3) s_k)),
-2 / (B - 3) on average; far from an optimum the mean gradient dominates and EB is large and
negative.

Parameters whose per-sample gradients do not vary (S_k = 0: a dead ReLU unit, a zero input
coordinate) carry no evidence either way and are left out of the sum and of D.  The paper
derives the criterion for plain SGD; with momentum or Adam the step is not the mini-batch
gradient and the criterion is a heuristic at best (reported, not recommended, there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# relative size under which a variance is round-off of sum_b G_bk^2 - B g_k^2, i.e. zero
VARIANCE_FLOOR = 1e-6


def eb_criterion(gradient: np.ndarray, sum_of_squares: np.ndarray, batch_size: int) -> float:
    """EB of one mini-batch (formula above), from the mean gradient ``gradient`` and the sum
    over the batch of the squared per-sample gradients ``sum_of_squares`` (arrays of the same
    shape, any shape).  NaN when no parameter varies."""
    ratio_sum, n_informative = eb_terms(
        np.asarray(gradient, dtype=float), np.asarray(sum_of_squares, dtype=float), batch_size
    )
    return eb_from_terms(ratio_sum, n_informative, batch_size)


def eb_terms(gradient: np.ndarray, sum_of_squares: np.ndarray, batch_size: int):
    """(sum_k g_k^2 / S_k, D) over the parameters whose per-sample gradients vary, the two
    sums EB is made of; a training loop adds them over its layers (``eb_from_terms``)."""
    if batch_size < 2:
        raise ValueError(f"the criterion needs at least 2 samples per batch, got {batch_size}")
    squared = gradient * gradient
    variance = (sum_of_squares - batch_size * squared) / (batch_size - 1)
    informative = variance > VARIANCE_FLOOR * (sum_of_squares / batch_size)
    ratio = np.divide(squared, variance, out=np.zeros_like(squared), where=informative)
    return float(ratio.sum()), int(informative.sum())


def eb_from_terms(ratio_sum: float, n_informative: int, batch_size: int) -> float:
    """EB = 1 - (B / D) sum_k g_k^2 / S_k from its two sums; NaN when D = 0."""
    if n_informative == 0:
        return float("nan")
    return 1.0 - batch_size * float(ratio_sum) / float(n_informative)


@dataclass(frozen=True)
class EBStop:
    """Where the evidence-based criterion stops a run: the first epoch >= ``start`` whose
    mean EB over the epoch's mini-batches is above 0 (None: never)."""

    stop_epoch: int | None
    values: tuple[float, ...]


def eb_stop(epoch_means, epochs, start: int = 1) -> EBStop:
    """The epoch-level rule.  Mahsereci et al. stop at the first step with EB > 0 after
    smoothing the noisy per-step values; averaging over an epoch's B-sample batches is that
    smoothing, and decisions at epoch ends are what the other rules here make."""
    values = np.asarray(epoch_means, dtype=float)
    for epoch, value in zip(epochs, values, strict=True):
        if epoch >= start and np.isfinite(value) and value > 0:
            return EBStop(int(epoch), tuple(values))
    return EBStop(None, tuple(values))
