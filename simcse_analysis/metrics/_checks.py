"""Input validation and small numeric helpers shared by the metric modules.

Every metric takes embeddings as an ``(N, d)`` array: one row per point (sentence), one column per
dimension. Validation raises :class:`~simcse_analysis.errors.InputError`, whose message names the
argument at fault, so the CLI can turn it into a one-line error with exit code 2.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

#: Rows per block when a pass over the data must stay in bounded memory.
ROW_BLOCK = 8192


def as_points(x: object, name: str = "x", *, min_rows: int = 2) -> np.ndarray:
    """Return ``x`` as a 2-D float array (float32 kept, anything else as float64), validated.

    Raises InputError if ``x`` is not 2-D, has fewer than ``min_rows`` rows or zero columns, or holds
    NaN/inf. The finiteness check runs in row blocks so it needs no full-size temporary.
    """
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as e:
        raise InputError(f"{name}: cannot read as a numeric array ({e})") from e
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise InputError(f"{name}: expected a 2-D array (points x dimensions), got shape {arr.shape}")
    n, d = arr.shape
    if n < min_rows:
        raise InputError(f"{name}: needs at least {min_rows} points (rows), got {n}")
    if d < 1:
        raise InputError(f"{name}: has zero dimensions (columns)")
    if arr.dtype != np.float32:
        arr = arr.astype(np.float64, copy=False)
    bad = first_nonfinite_row(arr)
    if bad is not None:
        raise InputError(f"{name}: row {bad} holds NaN or inf; remove or fix non-finite embeddings")
    return arr


def first_nonfinite_row(x: np.ndarray) -> int | None:
    """Index of the first row of ``x`` (``(N, …)``) holding NaN or ±inf, or ``None``; scanned in row blocks,
    so a memory-mapped matrix needs no full-size temporary."""
    for start in range(0, x.shape[0], ROW_BLOCK):
        block = np.asarray(x[start:start + ROW_BLOCK])
        if not np.isfinite(block).all():
            return start + int(np.flatnonzero(~np.isfinite(block.reshape(len(block), -1)).all(axis=1))[0])
    return None


def as_pairs(x: object, y: object, names: tuple[str, str] = ("x", "y"), *, min_rows: int = 1
             ) -> tuple[np.ndarray, np.ndarray]:
    """Validate two row-aligned ``(N, d)`` arrays (pair ``i`` is ``(x[i], y[i])``)."""
    a = as_points(x, names[0], min_rows=min_rows)
    b = as_points(y, names[1], min_rows=min_rows)
    if a.shape != b.shape:
        raise InputError(f"{names[0]} and {names[1]} must have the same shape (pairs row by row), "
                         f"got {a.shape} and {b.shape}")
    return a, b


def row_norms(x: np.ndarray) -> np.ndarray:
    """Euclidean norm of each row, accumulated in float64 (``(N,)`` float64)."""
    out = np.empty(x.shape[0], dtype=np.float64)
    for start in range(0, x.shape[0], ROW_BLOCK):
        block = x[start:start + ROW_BLOCK].astype(np.float64, copy=False)
        out[start:start + ROW_BLOCK] = np.sqrt(np.einsum("ij,ij->i", block, block))
    return out


def normalized(x: np.ndarray, name: str = "x", dtype: type = np.float64) -> np.ndarray:
    """Rows of ``x`` scaled to unit L2 norm (computed in float64, returned as ``dtype``).

    Raises InputError on a zero row, whose direction is undefined.
    """
    norms = row_norms(x)
    zero = np.flatnonzero(norms == 0.0)
    if zero.size:
        raise InputError(f"{name}: row {int(zero[0])} is the zero vector and cannot be L2-normalised")
    out = np.empty(x.shape, dtype=dtype)
    for start in range(0, x.shape[0], ROW_BLOCK):
        sl = slice(start, start + ROW_BLOCK)
        out[sl] = x[sl].astype(np.float64, copy=False) / norms[sl, None]
    return out


def check_positive(value: float, name: str) -> float:
    """``value`` as float, or InputError unless it is finite and > 0."""
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        raise InputError(f"{name} must be a positive finite number, got {value!r}")
    return v


def column_mean(x: np.ndarray) -> np.ndarray:
    """Mean of the rows of ``x`` accumulated in float64, in row blocks (``(d,)`` float64)."""
    total = np.zeros(x.shape[1], dtype=np.float64)
    for start in range(0, x.shape[0], ROW_BLOCK):
        total += x[start:start + ROW_BLOCK].sum(axis=0, dtype=np.float64)
    return total / x.shape[0]


def random_distinct_pairs(n: int, n_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_pairs`` index pairs ``(i, j)``, each uniform over the ordered pairs of ``n`` rows with ``i ≠ j``
    (drawn with replacement from ``numpy.random.default_rng(seed)``: ``i`` first, then ``j``)."""
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, size=n_pairs)
    j = rng.integers(0, n - 1, size=n_pairs)
    j += j >= i  # skip i itself: j is uniform over the other n - 1 rows
    return i, j
