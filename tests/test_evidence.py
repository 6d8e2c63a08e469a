"""The evidence-based criterion (Mahsereci et al. 2017) against its known cases, and the
training loop's per-layer torch path against the library's formula."""

import numpy as np
import pytest

from heavytail.evidence import eb_criterion, eb_stop


def quadratic_batch(rng, w, batch_size, dim=200, noise=1.0):
    """Per-sample gradients of l_b(w) = |w - x_b|^2 / 2 with x_b ~ N(0, noise^2 I): w - x_b."""
    samples = w[None, :] - noise * rng.standard_normal((batch_size, dim))
    return samples.mean(0), (samples**2).sum(0)


@pytest.mark.parametrize("batch_size", [8, 32])
def test_at_the_optimum_the_criterion_averages_minus_two_over_b_minus_three(batch_size):
    # pure noise: B g^2 / S is an F(1, B-1) variable, mean (B - 1) / (B - 3)
    rng = np.random.default_rng(0)
    values = [
        eb_criterion(*quadratic_batch(rng, np.zeros(200), batch_size), batch_size)
        for _ in range(400)
    ]
    expected = -2.0 / (batch_size - 3)
    standard_error = np.std(values) / np.sqrt(len(values))
    assert abs(np.mean(values) - expected) < 4 * standard_error


def test_far_from_the_optimum_the_criterion_is_large_and_negative():
    rng = np.random.default_rng(1)
    value = eb_criterion(*quadratic_batch(rng, np.full(200, 3.0), 32), 32)
    assert value < -100  # B |g|^2 / S ~ B w^2 / noise^2 = 288 per coordinate


def test_parameters_without_variance_are_left_out_and_none_gives_nan():
    gradient = np.array([0.0, 0.5, 0.0])
    squares = np.array([0.0, 0.5**2 * 4 + 1.0, 0.0])  # only the second varies
    value = eb_criterion(gradient, squares, 4)
    variance = (squares[1] - 4 * 0.25) / 3
    assert value == pytest.approx(1 - 4 * 0.25 / variance)
    assert np.isnan(eb_criterion(np.zeros(3), np.zeros(3), 4))
    with pytest.raises(ValueError, match="at least 2"):
        eb_criterion(gradient, squares, 1)


def test_the_epoch_rule_stops_at_the_first_positive_mean_after_start():
    result = eb_stop([-3.0, -0.5, 0.1, -0.2, 0.4], [1, 2, 3, 4, 5])
    assert result.stop_epoch == 3
    assert eb_stop([-1.0, np.nan, -0.1], [1, 2, 3]).stop_epoch is None
    assert eb_stop([0.5, 0.2], [1, 2], start=2).stop_epoch == 2


def test_the_training_loop_measures_the_library_formula_on_a_small_network():
    torch = pytest.importorskip("torch")
    from htrain.gradstats import GradientNoise

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3)
    ).double()
    x, y = torch.randn(16, 5, dtype=torch.float64), torch.randint(0, 3, (16,))
    with GradientNoise(model) as noise:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        measured = float(noise.criterion(16))
    # the same quantity by brute force: one backward pass per sample
    per_sample = []
    for b in range(16):
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(x[b : b + 1]), y[b : b + 1]).backward()
        per_sample.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]).numpy())
    grads = np.array(per_sample)
    expected = eb_criterion(grads.mean(0), (grads**2).sum(0), 16)
    assert measured == pytest.approx(expected, rel=1e-9)
