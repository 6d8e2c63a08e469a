"""The bulk-growth rule (heavytail.growth) against random-matrix ground truth, its state
machine, and SpectralEarlyStopping(rule="bulk_growth") handing back the weights it recommends."""

import numpy as np
import pytest

from heavytail import SpectralEarlyStopping
from heavytail.fit import fit_body
from heavytail.growth import (
    BulkGrowthStopping,
    bulk_growth_stop,
    memorises_freely,
    spikes_out,
)


def gram_eigenvalues(weight):
    return np.linalg.eigvalsh(weight @ weight.T / weight.shape[1])


def test_the_quartile_scale_of_an_mp_sample_fluctuates_at_order_one_over_n():
    # the unit of the rule's threshold: relative SD a / n with a = O(1) (rigidity)
    rng = np.random.default_rng(0)
    for n in (128, 256):
        scales = [fit_body(gram_eigenvalues(rng.standard_normal((n, 2 * n))))[1] for _ in range(40)]
        a = n * np.std(scales, ddof=1) / np.mean(scales)
        assert 0.8 < a < 5.0, (n, a)
        assert np.mean(scales) == pytest.approx(1.0, abs=0.02)  # and it is unbiased


def test_an_added_unstructured_component_grows_the_body_scale_by_its_variance():
    # free additive convolution: W0 + R with entry variances v and r has MP scale v + r
    rng = np.random.default_rng(1)
    base = rng.standard_normal((256, 512))
    before = fit_body(gram_eigenvalues(base))[1]
    for r in (0.02, 0.1):
        after = fit_body(gram_eigenvalues(base + np.sqrt(r) * rng.standard_normal(base.shape)))[1]
        assert after / before - 1 == pytest.approx(r, rel=0.25)


def test_class_spikes_move_the_body_scale_by_at_most_k_ranks():
    # singular-value interlacing: a rank-K perturbation moves every eigenvalue by at most K
    # positions, so the quartile scale stays between those of the spectrum shifted by +-K
    # ranks; the reference is therefore taken once the spikes are out
    rng = np.random.default_rng(2)
    base = rng.standard_normal((256, 512))
    u, v = rng.standard_normal((256, 4)), rng.standard_normal((4, 512))
    eigs = np.sort(gram_eigenvalues(base))
    after = fit_body(gram_eigenvalues(base + 3.0 * u @ v / np.sqrt(512)))[1]
    down = fit_body(np.concatenate([np.zeros(4), eigs[:-4]]))[1]
    up = fit_body(np.concatenate([eigs[4:], np.full(4, eigs[-1])]))[1]
    assert down <= after <= up


def test_cover_bound_and_spike_counts():
    assert memorises_freely(4000, [2048, 1024])  # quick NN2: fc1 can fit anything
    assert not memorises_freely(60000, [2048, 1024])
    assert not memorises_freely(None, [2048])
    assert spikes_out({"a": 7, "b": 8}, 8) and not spikes_out({"a": 6, "b": 8}, 8)
    assert not spikes_out({"a": None, "b": 8}, 8) and not spikes_out({}, 8)


def test_the_state_machine_stops_after_the_spikes_and_recommends_the_epoch_before():
    epochs = [0, 1, 2, 3, 4, 5, 6]
    counts = {"fc2": [0, 2, 7, 8, 8, 8, 8], "fc3": [0, 0, 5, 7, 7, 8, 8]}
    sigma2 = [1.0, 1.0, 1.01, 1.0, 0.999, 1.0005, 1.003]  # spikes out at 3, grows at 6
    result = bulk_growth_stop(epochs, counts, sigma2, n=512, n_classes=8, z=0.5)
    assert (result.spikes_out_epoch, result.stop_epoch, result.recommended_epoch) == (3, 6, 5)
    assert result.reference == 1.0
    flat = bulk_growth_stop(epochs, counts, [1.0] * 7, n=512, n_classes=8)
    assert flat.stop_epoch is None and flat.recommended_epoch is None
    guarded = bulk_growth_stop(epochs, counts, sigma2, 512, 8, n_train=1000, fan_ins=[1024])
    assert guarded.stands_down and guarded.stop_epoch is None


def test_the_state_machine_resumes_from_its_state_and_refuses_another_config():
    rule = BulkGrowthStopping(8, z=0.5)
    rule.observe(1, {"a": 8}, 1.0, 512)
    restored = BulkGrowthStopping(8, z=0.5)
    restored.load_state_dict(rule.state_dict())
    assert restored.observe(2, {"a": 8}, 1.01, 512) and restored.stop_epoch == 2
    with pytest.raises(ValueError, match="K=8"):
        BulkGrowthStopping(5, z=0.5).load_state_dict(rule.state_dict())
    for bad in (1, 2.5, True):
        with pytest.raises(ValueError, match="number of classes"):
            BulkGrowthStopping(bad)
    with pytest.raises(ValueError, match="z must be"):
        BulkGrowthStopping(8, z=float("nan"))
    with pytest.raises(ValueError, match="needs n_classes"):
        SpectralEarlyStopping(rule="bulk_growth")
    with pytest.raises(ValueError, match="rule must be"):
        SpectralEarlyStopping(rule="magic", n_classes=3)


def synthetic_weights(rng, n=256, big_n=512, K=4):
    """Epoch -> weight: noise (1-2), K class spikes out (3-4), the bulk grows (5-6)."""
    base = rng.standard_normal((n, big_n))
    u, v = rng.standard_normal((n, K)), rng.standard_normal((K, big_n))
    signal = 4.0 * u @ v / np.sqrt(big_n)
    grow = rng.standard_normal((n, big_n))
    return {
        1: base,
        2: base + 0.1 * signal,
        3: base + signal,
        4: base + signal,
        5: base + signal + 0.3 * grow,
        6: base + signal + 0.5 * grow,
    }


def test_the_callback_stops_on_bulk_growth_and_hands_back_the_recommended_weights():
    weights = synthetic_weights(np.random.default_rng(3))
    stopper = SpectralEarlyStopping(
        layers=["w"], n_classes=4, rule="bulk_growth", keep_weights=True
    )
    for epoch, weight in weights.items():
        if stopper.step({"w": weight}, epoch):
            break
    assert stopper.growth.spikes_out_epoch == 3
    assert stopper.stop_epoch == 5 and stopper.recommended_epoch == 4
    np.testing.assert_array_equal(stopper.recommended_state["w"], weights[4])
    assert len(stopper.history) == 5  # the paper statistic is recorded all the while
    # resumed from its state_dict, it goes on where it was
    resumed = SpectralEarlyStopping(layers=["w"], n_classes=4, rule="bulk_growth")
    partial = SpectralEarlyStopping(layers=["w"], n_classes=4, rule="bulk_growth")
    for epoch in (1, 2, 3):
        partial.step({"w": weights[epoch]}, epoch)
    resumed.load_state_dict(partial.state_dict())
    assert not resumed.step({"w": weights[4]}, 4) and resumed.step({"w": weights[5]}, 5)


def test_the_threshold_rule_recommends_its_stop_epoch_and_restores_a_torch_model():
    torch = pytest.importorskip("torch")
    model = torch.nn.Linear(64, 32)
    stopper = SpectralEarlyStopping(layers=None, C=1e-9, keep_weights=True)  # fires at once
    assert stopper.step(model, 1)
    assert stopper.recommended_epoch == 1
    kept = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.add_(1.0)
    stopper.restore(model)
    for name, value in model.state_dict().items():
        assert torch.equal(value, kept[name])
    with pytest.raises(ValueError, match="keep_weights=True"):
        SpectralEarlyStopping().restore(model)
