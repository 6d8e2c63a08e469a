import numpy as np
import pytest

from heavytail import SpectralEarlyStopping
from heavytail.families import gaussian, student_t2

torch = pytest.importorskip("torch")  # weights as tensors; the rest needs numpy alone


def weights(epoch: int, heavy_from: dict[str, int], rng) -> dict[str, np.ndarray]:
    """Layers that are Gaussian noise until their epoch in ``heavy_from``, then heavy tailed."""
    return {
        name: (student_t2 if epoch >= start else gaussian)(200, 400, rng)
        for name, start in heavy_from.items()
    }


def run(stopper: SpectralEarlyStopping, heavy_from: dict[str, int], epochs: int = 8) -> list[int]:
    rng = np.random.default_rng(0)
    stopped = []
    for epoch in range(1, epochs + 1):
        if stopper.step(weights(epoch, heavy_from, rng), epoch):
            stopped.append(epoch)
    return stopped


def test_first_layer_to_fire_stops_training_with_patience_one():
    stopper = SpectralEarlyStopping(layers=["a", "b"])
    stopped = run(stopper, {"a": 3, "b": 6})
    assert stopper.stop_epoch == 3 and stopped[0] == 3
    assert stopper.stopped_by == ["a"]
    assert stopper.fire_epoch == {"a": 3, "b": 6}  # still recorded after the stop


def test_patience_counts_consecutive_epochs_and_all_waits_for_every_layer():
    stopper = SpectralEarlyStopping(layers=["a", "b"], patience=2, combine="all")
    run(stopper, {"a": 3, "b": 5})
    assert stopper.fire_epoch == {"a": 4, "b": 6}
    assert stopper.stop_epoch == 6 and stopper.stopped_by == ["a", "b"]


def test_start_from_epoch_and_history():
    stopper = SpectralEarlyStopping(layers=["a"], start_from_epoch=5, threshold="calibrated")
    run(stopper, {"a": 2}, epochs=6)
    assert stopper.stop_epoch == 5
    history = stopper.history
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5, 6]
    assert history[2]["s_hat"] > history[2]["threshold"] and not history[2]["over"]
    assert history[4]["over"] and history[4]["fired"]


def test_noise_never_stops():
    stopper = SpectralEarlyStopping(layers=["a"], threshold="calibrated")
    assert run(stopper, {"a": 99}) == [] and stopper.stop_epoch is None


def test_works_on_a_torch_model_in_a_plain_loop():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(300, 200), torch.nn.ReLU(), torch.nn.Linear(200, 3))
    stopper = SpectralEarlyStopping(threshold="calibrated", verbose=True)
    assert not stopper.step(model, epoch=1)
    assert stopper.layers == ["0", "2"]
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(student_t2(200, 300, np.random.default_rng(1))))
    assert stopper.step(model, epoch=2)
    assert stopper.stopped_by == ["0"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patience": 0}, "patience must be at least 1"),
        ({"combine": "most"}, "combine must be one of"),
        ({"threshold": "loose"}, "threshold must be one of"),
        ({"C": 0}, "C must be a positive number"),
    ],
)
def test_bad_parameters_fail_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SpectralEarlyStopping(**kwargs)


def test_unknown_layer_is_an_error():
    with pytest.raises(ValueError, match=r"monitored layer\(s\) \['fc9'\]"):
        SpectralEarlyStopping(layers=["fc9"]).step({"fc1": np.ones((4, 4))}, 1)


def test_stop_settings_are_checked_once_with_one_line_errors():
    from heavytail import StopSettings

    assert StopSettings() == StopSettings(patience=1, start_from_epoch=1, combine="any")
    assert StopSettings(patience=2.0).patience == 2  # a whole float is taken as its int
    for bad, message in [
        (dict(patience=0), "patience must be at least 1"),
        (dict(patience=1.5), "patience must be a whole number"),
        (dict(start_from_epoch=-1), "start_from_epoch must be at least 0"),
        (dict(combine="most"), "combine must be one of"),
    ]:
        with pytest.raises(ValueError, match=message):
            StopSettings(**bad)
        with pytest.raises(ValueError, match=message):
            SpectralEarlyStopping(layers=["a"], **bad)


def test_epoch_zero_the_initialisation_never_fires_by_default():
    # start_from_epoch is 1 by default, as in the runner, replay and the integrations
    stopper = SpectralEarlyStopping(layers=["a"], threshold="calibrated")
    assert stopper.start_from_epoch == 1
    rng = np.random.default_rng(0)
    heavy = rng.standard_t(1.5, size=(128, 256))  # far from MP: the rule fires on it
    assert not stopper.step({"a": heavy}, epoch=0)
    assert stopper.step({"a": heavy}, epoch=1) and stopper.stop_epoch == 1
