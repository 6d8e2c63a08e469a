import numpy as np
import pandas as pd
import pytest

from heavytail import analyze, esd
from heavytail.analyze import COLUMNS

torch = pytest.importorskip("torch")  # models as torch modules
nn = torch.nn


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 5),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 300),
        nn.ReLU(),
        nn.Linear(300, 120),
        nn.BatchNorm1d(120),
        nn.Linear(120, 1),
        nn.Embedding(10, 4),
    )


def test_analyze_gives_one_row_per_weight_layer_and_lists_skips():
    table = analyze(small_model())
    assert list(table.columns) == list(COLUMNS)
    assert list(table["name"]) == ["0", "3", "5", "7", "8"]
    assert list(table["kind"]) == ["Conv2d", "Linear", "Linear", "Linear", "Embedding"]
    analysed = table[table["skipped"].isna()]
    assert list(analysed["name"]) == ["0", "3", "5"]
    assert set(analysed["type"]) <= {"LT", "BT", "HT", "RC"}
    # PyTorch's default init is i.i.d. uniform: MP, light tailed
    assert (analysed["type"] == "LT").all()
    skipped = table.set_index("name")["skipped"]
    assert "min(shape) = 1" in skipped["7"]
    assert "Embedding" in skipped["8"]
    row = table.set_index("name").loc["3"]
    assert (row["n"], row["N"], row["shape"]) == (256, 300, (300, 256))
    assert row["ratio"] == pytest.approx(256 / 300)


def test_weightwatcher_columns_follow_their_definitions():
    model = small_model()
    row = analyze(model, layers=["5"]).iloc[0]
    weight = model[5].weight.detach().double().numpy()
    singular = np.linalg.svd(weight, compute_uv=False)
    assert row["lambda_max"] == pytest.approx(singular[0] ** 2, rel=1e-9)
    assert row["log_spectral_norm"] == pytest.approx(np.log10(singular[0] ** 2), rel=1e-9)
    assert row["stable_rank"] == pytest.approx(np.sum(singular**2) / singular[0] ** 2, rel=1e-9)
    assert row["alpha"] > 1 and row["xmin"] > 0


def test_analyze_accepts_a_mapping_of_arrays_and_conv_slices(rng):
    weights = {"fc": rng.standard_normal((50, 100)), "conv": rng.standard_normal((8, 4, 3, 3))}
    table = analyze(weights, conv="slices").set_index("name")
    assert table.loc["fc", "kind"] == "matrix"
    assert (table.loc["conv", "n"], table.loc["conv", "N"]) == (4, 8)


def test_analyze_lists_a_diverged_layer_instead_of_failing():
    model = small_model()
    with torch.no_grad():
        model[5].weight[0, 0] = float("nan")
    table = analyze(model).set_index("name")
    assert "NaN or inf" in table.loc["5", "skipped"]
    assert table.loc["3", "type"] == "LT"


def test_analyze_rejects_unknown_layer_names():
    with pytest.raises(ValueError, match=r"unknown layer\(s\) \['fc9'\]; available"):
        analyze(small_model(), layers=["fc9"])


def test_analyze_rejects_objects_that_are_not_models():
    with pytest.raises(ValueError, match=r"torch nn\.Module or a mapping"):
        analyze([np.ones((3, 3))])


def test_analyze_matches_the_library_on_the_same_matrix(rng):
    weight = rng.standard_t(2, (200, 400))
    row = analyze({"w": weight}).iloc[0]
    assert row["type"] == "HT" and row["fires"]
    assert row["lambda_max"] == pytest.approx(esd(weight)[-1] * 400)
    assert isinstance(analyze({"w": weight}), pd.DataFrame)
