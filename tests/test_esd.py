import numpy as np
import pytest

from heavytail import esd

torch = pytest.importorskip("torch")  # weights as tensors; the rest needs numpy alone


@pytest.mark.parametrize("shape", [(7, 13), (40, 25), (64, 64), (3, 200)])
def test_esd_matches_numpy_singular_values(shape, rng):
    weight = rng.standard_normal(shape)
    expected = np.sort(np.linalg.svd(weight, compute_uv=False) ** 2 / max(shape))
    result = esd(weight)
    assert result.dtype == np.float64
    assert result.shape == (min(shape),)
    assert np.all(np.diff(result) >= 0)
    np.testing.assert_allclose(result, expected, rtol=1e-10, atol=1e-12)


def test_esd_is_transpose_invariant(rng):
    weight = rng.standard_normal((30, 50))
    np.testing.assert_allclose(esd(weight), esd(weight.T), rtol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_esd_accepts_torch_tensors(dtype, rng):
    weight = rng.standard_normal((20, 35))
    tensor = torch.tensor(weight, dtype=dtype, requires_grad=True)
    expected = esd(tensor.detach().double().numpy())
    np.testing.assert_allclose(
        esd(tensor), expected, rtol=1e-6 if dtype == torch.float32 else 1e-12
    )


def test_conv_flatten_and_slices(rng):
    kernel = rng.standard_normal((8, 3, 3, 3))
    flat = esd(kernel, conv="flatten")
    np.testing.assert_allclose(flat, esd(kernel.reshape(8, 27)))
    slices = esd(kernel, conv="slices")
    assert slices.shape == (9 * 3,)
    pooled = np.sort(np.concatenate([esd(kernel[:, :, i, j]) for i in range(3) for j in range(3)]))
    np.testing.assert_allclose(slices, pooled)


@pytest.mark.parametrize(
    ("weight", "message"),
    [
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN or inf"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), "NaN or inf"),
        (np.zeros((0, 5)), "empty"),
        (np.ones((1, 10)), "min\\(shape\\) = 1"),
        (np.ones((4, 4), dtype=np.int64), "dtype int64"),
        (np.ones((4, 4), dtype=bool), "dtype bool"),
        (np.ones((4, 4), dtype=complex), "dtype complex128"),
        (np.ones(5), "expected a 2-D matrix"),
        (np.ones((2, 3, 4)), "expected a 2-D matrix"),
        (torch.ones(3, 3, dtype=torch.int32), "dtype torch.int32"),
    ],
)
def test_esd_rejects_bad_input_with_a_clear_message(weight, message):
    with pytest.raises(ValueError, match=message):
        esd(weight)


def test_esd_rejects_unknown_conv_mode(rng):
    with pytest.raises(ValueError, match="conv must be one of"):
        esd(rng.standard_normal((4, 3, 3, 3)), conv="fft")


def test_esd_of_all_zero_matrix_is_all_zero():
    np.testing.assert_array_equal(esd(np.zeros((5, 8))), np.zeros(5))
