"""Eigenvalues of W W^T / N computed where the weights are (GPU or CPU).

``heavytail.esd`` works on the host in float64 (the library never imports torch).  On a GPU,
copying each monitored matrix to the host and solving there costs a device-to-host copy of
the matrix and a host eigensolve; the Gram matrix and its float64 eigenvalues can instead be
computed on the device and only the n eigenvalues copied back.  Same formula, same float64
precision, the same ValueErrors as ``heavytail.esd`` (``scripts/bench_gpu.py`` measures both).
"""

from __future__ import annotations

import numpy as np
import torch

import heavytail as ht


def eigenvalues_of(weight: torch.Tensor) -> np.ndarray:
    """Ascending eigenvalues of W W^T / N (n <= N after transposing), float64, on the host."""
    if weight.device.type != "cuda":
        return ht.esd(weight)
    matrix = weight.detach().double()
    if matrix.dim() != 2:
        return ht.esd(weight)
    if not torch.isfinite(matrix).all():
        return ht.esd(weight)  # raises the library's message for NaN/inf weights
    if matrix.shape[0] > matrix.shape[1]:
        matrix = matrix.T
    n, big_n = matrix.shape
    if n < 2:
        return ht.esd(weight)
    gram = matrix @ matrix.T / big_n
    values = torch.linalg.eigvalsh(gram).clamp_min(0.0)
    return values.cpu().numpy()
