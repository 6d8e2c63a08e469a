"""Empirical spectral density (ESD) of a weight matrix: the eigenvalues of W W^T / N."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONV_MODES = ("flatten", "slices")


def as_float64_array(weight) -> np.ndarray:
    """A float64 numpy view or copy of a numpy array or a torch tensor on any device.

    Torch is never imported here: a tensor is recognised by its ``detach`` method, so the
    library runs without torch installed.  Integer, boolean and complex inputs are refused,
    because casting them would silently change what the caller meant.
    """
    if hasattr(weight, "detach") and hasattr(weight, "cpu"):
        tensor = weight.detach()
        if tensor.is_complex() or not tensor.is_floating_point():
            raise ValueError(f"weight has dtype {tensor.dtype}; pass a real floating-point tensor")
        weight = tensor.cpu().double().numpy()
    array = np.asarray(weight)
    if array.dtype == object or not np.issubdtype(array.dtype, np.floating):
        raise ValueError(
            f"weight has dtype {array.dtype}; pass a real floating-point array "
            "(cast integer weights explicitly with .astype(float))"
        )
    return array.astype(np.float64, copy=False)  # read only from here on: no copy needed


def _check_finite(matrix: np.ndarray) -> None:
    if matrix.size == 0:
        raise ValueError(f"weight of shape {matrix.shape} is empty")
    bad = ~np.isfinite(matrix)
    if bad.any():
        raise ValueError(
            f"weight has {int(bad.sum())} NaN or inf entries out of {matrix.size}; "
            "the spectrum is undefined (did training diverge?)"
        )


def _gram_eigenvalues(matrix: np.ndarray) -> np.ndarray:
    """Eigenvalues of M M^T / N for M of shape n x N after transposing so n <= N.

    The Gram route (n^2 N + n^3 flops) is several times faster than an SVD of M.  Its
    absolute error is about eps * lambda_max, far below any histogram bin; the tiny negative
    values that rounding leaves at a rank deficiency are clipped to 0.
    """
    if matrix.shape[0] > matrix.shape[1]:
        matrix = matrix.T
    n, N = matrix.shape
    if n < 2:
        raise ValueError(
            f"weight of shape {matrix.shape} has min(shape) = {n}; a spectrum needs at least "
            "2 eigenvalues"
        )
    gram = matrix @ matrix.T / N
    eigenvalues = np.linalg.eigvalsh(gram)
    return np.clip(eigenvalues, 0.0, None)


def matrix_shape(weight_shape: tuple[int, ...], conv: str = "flatten") -> tuple[int, int]:
    """(n, N) of the matrix (or of each slice) whose ESD ``esd`` computes, n <= N."""
    if conv not in CONV_MODES:
        raise ValueError(f"conv must be one of {CONV_MODES}, got {conv!r}")
    if len(weight_shape) == 2:
        rows, cols = weight_shape
    elif len(weight_shape) == 4:
        out_channels, in_channels, kh, kw = weight_shape
        rows, cols = (
            (out_channels, in_channels * kh * kw)
            if conv == "flatten"
            else (out_channels, in_channels)
        )
    else:
        raise ValueError(
            f"weight has shape {tuple(weight_shape)}; expected a 2-D matrix (out, in) or a "
            "4-D conv kernel (out, in, kh, kw)"
        )
    return min(rows, cols), max(rows, cols)


def esd(weight, conv: str = "flatten") -> np.ndarray:
    """Eigenvalues of W W^T / N, ascending float64, for W of shape n x N with n = min(shape).

    The 1/N scaling makes the eigenvalues of a matrix with i.i.d. entries of variance
    sigma2 follow MP(c = n/N, sigma2) (see ``heavytail.mp``); the paper's 1/sqrt(N)
    rescaling of W is the same thing.  W is transposed when it has more rows than columns.

    Conv kernels (out, in, kh, kw):
      * ``conv="flatten"``: one matrix out x (in kh kw), the layer seen as a linear map on
        patches (the usual choice for unfolded convolutions).
      * ``conv="slices"``: WeightWatcher's convention, the kh kw matrices W[:, :, i, j] of
        shape out x in, each normalised by its own N = max(out, in), eigenvalues pooled into
        one array of kh kw min(out, in) values.  All slices share one aspect ratio, so the
        pooled ESD still has one MP law under the null.

    Accepts numpy arrays and torch tensors on any device (moved to CPU, computed in
    float64).  Raises ValueError, naming the problem, for NaN/inf entries, empty input,
    min(shape) < 2, non-float dtypes and shapes other than 2-D or 4-D.
    """
    matrix = as_float64_array(weight)
    n, _ = matrix_shape(matrix.shape, conv)
    _check_finite(matrix)
    if matrix.ndim == 2:
        return _gram_eigenvalues(matrix)
    if conv == "flatten":
        return _gram_eigenvalues(matrix.reshape(matrix.shape[0], -1))
    if n < 2:
        raise ValueError(
            f"conv weight of shape {matrix.shape} has slices with min(out, in) = {n}; "
            "use conv='flatten'"
        )
    slices = [matrix[:, :, i, j] for i in range(matrix.shape[2]) for j in range(matrix.shape[3])]
    return np.sort(np.concatenate([_gram_eigenvalues(s) for s in slices]))


@dataclass(frozen=True, eq=False)
class LayerSpectrum:
    """A weight's ESD with the shape it is read at: ``eigenvalues`` of W W^T / N (``esd``),
    the n x N of the matrix they come from (``matrix_shape``) and its aspect ratio c = n/N,
    which picks the MP law under the null and the calibrated threshold."""

    eigenvalues: np.ndarray
    n: int
    N: int

    @property
    def ratio(self) -> float:
        return self.n / self.N


def layer_spectrum(weight, conv: str = "flatten") -> LayerSpectrum:
    """``esd(weight, conv)`` with its (n, N): what every per-layer analysis starts from
    (``heavytail.analyze``, ``SpectralEarlyStopping``, the callbacks, the command line).
    ValueError as ``esd`` raises it."""
    n, big_n = matrix_shape(tuple(weight.shape), conv)
    return LayerSpectrum(esd(weight, conv=conv), n, big_n)
