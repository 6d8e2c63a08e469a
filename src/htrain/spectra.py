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


def stacked_eigenvalues(weights: torch.Tensor) -> list[np.ndarray | None]:
    """Per member of a stack (R, out, in): the ascending eigenvalues of W_r W_r^T / N in
    float64, from one batched eigendecomposition where the weights are, copied to the host
    once for all members (``htrain.batched``: the spectra of all runs of a layer together).
    A member with NaN or infinite weights gets None (its recorder records why, from the
    weight itself, as a single run would).  On a CPU each member goes through
    ``heavytail.esd`` (numpy's LAPACK), as a single run does: torch's CPU eigensolver was
    100x slower here (scripts/bench_gpu.py, part 5)."""
    if weights.device.type != "cuda":
        finite = torch.isfinite(weights.detach()).flatten(1).all(1).tolist()
        return [ht.esd(weights[r]) if finite[r] else None for r in range(len(finite))]
    matrix = weights.detach().double()
    if matrix.shape[1] > matrix.shape[2]:
        matrix = matrix.transpose(1, 2)
    big_n = matrix.shape[2]
    finite = torch.isfinite(matrix).flatten(1).all(1)
    safe = torch.where(finite[:, None, None], matrix, torch.zeros_like(matrix))
    gram = safe @ safe.transpose(1, 2) / big_n
    values = torch.linalg.eigvalsh(gram).clamp_min(0.0)
    host, ok = values.cpu().numpy(), finite.cpu().tolist()
    return [host[r] if ok[r] else None for r in range(len(ok))]
