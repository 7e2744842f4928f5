"""The heavy metric work in torch, on a chosen device: the same formulas as the NumPy modules.

What runs here: the O(N²) exact-uniformity tiles and sampled uniformity (:mod:`.align_uniform`), the
O(N·d²) float64 Gram matrix behind spectra, IsoScore and the first-PC share (:mod:`.spectrum`), and the
O(N·d) passes of anisotropy (row norms, exact mean cosine, random-pair cosine, partition function,
:mod:`.anisotropy`). Small d×d eigenproblems stay on the CPU (float64 LAPACK). Accumulation is float64
wherever the NumPy path accumulates in float64; results agree with it to ~1e-6 relative or better
(tests run the torch path on the CPU against the NumPy path).

Inputs are "row sources": a NumPy array or memory map, a torch tensor (any device), or anything with
``shape`` and row slicing that returns arrays (an :class:`~simcse_analysis.store.EmbeddingStore`). Rows
are read block by block, so a memory-mapped matrix larger than RAM streams; a matrix up to
``resident_bytes`` is first moved to the device whole (normalised), so the tiles never leave it.

The public entry points are the NumPy-facing functions of the other metric modules, which call into
here when given ``device=`` or a non-NumPy input.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InputError
from ._checks import random_distinct_pairs

#: Rows per block when streaming a row source.
STREAM_BLOCK = 8192
#: Default ceiling for moving a whole (normalised) matrix onto a CPU device: 512 MiB.
CPU_RESIDENT_BYTES = 512 << 20


def is_tensor(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def is_lazy(x: Any) -> bool:
    """True for inputs the NumPy path would have to materialise: tensors and stores (not arrays or lists)."""
    return not isinstance(x, np.ndarray) and hasattr(x, "shape") and hasattr(x, "__getitem__") and (
        is_tensor(x) or not isinstance(x, (list, tuple)))


def torch_device(device: Any, x: Any = None) -> Any:
    """``device`` as a ``torch.device`` (default: ``x``'s device for a tensor, else the CPU); InputError for
    an unknown device or CUDA/MPS that is not available."""
    import torch

    if device is None:
        return x.device if is_tensor(x) else torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"unknown device {device!r}: use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device}: no CUDA GPU is available here; use --device cpu")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError(f"--device {device}: no Apple GPU (MPS) is available here; use --device cpu")
    return dev


class Rows:
    """Blocks of a row source as tensors on ``device`` (validated: 2-D, enough rows, finite)."""

    def __init__(self, x: Any, device: Any = None, name: str = "x", min_rows: int = 2) -> None:
        self.x = x
        self.device = torch_device(device, x)
        shape = tuple(x.shape)
        if len(shape) != 2:
            raise InputError(f"{name}: expected a 2-D array (points x dimensions), got shape {shape}")
        self.n, self.d = int(shape[0]), int(shape[1])
        if self.n < min_rows:
            raise InputError(f"{name}: needs at least {min_rows} points (rows), got {self.n}")
        if self.d < 1:
            raise InputError(f"{name}: has zero dimensions (columns)")
        self.name = name

    def block(self, start: int, stop: int, dtype: Any) -> Any:
        import torch

        b = self.x[start:stop]
        if not is_tensor(b):
            b = torch.from_numpy(np.ascontiguousarray(np.asarray(b)))
        return b.to(device=self.device, dtype=dtype)

    def take(self, idx: np.ndarray, dtype: Any) -> Any:
        """Rows ``idx`` (a sorted-or-not int array) as one tensor."""
        import torch

        if is_tensor(self.x):
            return self.x[torch.as_tensor(idx, device=self.x.device)].to(device=self.device, dtype=dtype)
        return torch.from_numpy(np.ascontiguousarray(np.asarray(self.x[idx]))).to(device=self.device, dtype=dtype)

    def blocks(self, dtype: Any, size: int = STREAM_BLOCK):
        for start in range(0, self.n, size):
            yield start, self.block(start, min(start + size, self.n), dtype)

    def norms(self) -> Any:
        """float64 row norms ``(N,)`` on the device; InputError on NaN/inf (naming the first bad row)."""
        import torch

        out = torch.empty(self.n, dtype=torch.float64, device=self.device)
        for start, b in self.blocks(torch.float64):
            bad = ~torch.isfinite(b).all(dim=1)
            if bool(bad.any()):
                row = start + int(torch.nonzero(bad)[0])
                raise InputError(f"{self.name}: row {row} holds NaN or inf; remove or fix non-finite embeddings")
            out[start:start + len(b)] = torch.linalg.vector_norm(b, dim=1)
        return out

    def nonzero_norms(self, what: str = "cannot be L2-normalised") -> Any:
        import torch

        norms = self.norms()
        zero = torch.nonzero(norms == 0)
        if len(zero):
            raise InputError(f"{self.name}: row {int(zero[0])} is the zero vector and {what}")
        return norms


# ----------------------------------------------------------------------------------------- uniformity
def uniformity(x: Any, t: float = 2.0, *, normalize: bool = True, precision: str = "float32",
               block_size: int = 4096, device: Any = None, resident_bytes: int | None = None) -> float:
    """Exact ``ℓ_uniform = log[(2/(N(N−1))) Σ_{i<j} exp(−t‖x_i − x_j‖²)]`` in torch (see
    :func:`simcse_analysis.metrics.align_uniform.uniformity` for the formula and accuracy).

    Tiles ``B×B`` of the upper triangle: ``−t‖u_i − u_j‖² = 2t u_i·u_j − t‖u_i‖² − t‖u_j‖²`` from one
    product in ``precision``, ``exp`` in place, row sums added in float64, tiles combined by
    log-sum-exp; a tile is shifted by its maximum only when ``exp`` could underflow. Rows are normalised
    in float64 then cast. If the normalised matrix fits ``resident_bytes`` (default: 512 MiB on the CPU,
    half the free memory of a GPU) it is moved to the device once; otherwise each tile's rows are read
    from ``x`` (memory map or store) as needed, so memory is O(B·d + B²).
    """
    import torch

    from ._checks import check_positive

    t = check_positive(t, "t")
    if precision not in ("float32", "float64"):
        raise InputError(f"precision must be 'float32' or 'float64', got {precision!r}")
    if block_size < 1:
        raise InputError(f"block_size must be >= 1, got {block_size}")
    rows = Rows(x, device)
    dt = torch.float32 if precision == "float32" else torch.float64
    norms = rows.nonzero_norms() if normalize else rows.norms()
    n, dev = rows.n, rows.device
    budget = _resident_budget(dev, resident_bytes)
    whole = None
    if n * rows.d * (4 if dt == torch.float32 else 8) <= budget:
        whole = torch.empty((n, rows.d), dtype=dt, device=dev)
        for start, b in rows.blocks(torch.float64):
            whole[start:start + len(b)] = (b / norms[start:start + len(b), None]) if normalize else b

    def get(start: int, stop: int) -> tuple[Any, Any]:
        """Rows [start, stop) in ``dt`` and their squared norms (float64 → dt)."""
        if whole is not None:
            u = whole[start:stop]
        else:
            b = rows.block(start, stop, torch.float64)
            u = (b / norms[start:stop, None]).to(dt) if normalize else b.to(dt)
        sq = torch.ones(stop - start, dtype=dt, device=dev) if normalize else (norms[start:stop] ** 2).to(dt)
        return u, sq

    bounded = normalize and 4.0 * t <= 50.0
    b = min(block_size, n)
    lower = torch.ones(b, b, dtype=torch.bool, device=dev).tril()
    buf = torch.empty(b * b, dtype=dt, device=dev)  # one tile buffer, reused (no allocation per tile)
    log_terms: list[float] = []
    for r0 in range(0, n, b):
        r1 = min(r0 + b, n)
        left, lsq = get(r0, r1)
        left2 = left * (2.0 * t)
        for c0 in range(r0, n, b):
            c1 = min(c0 + b, n)
            if c0 == r0 and c1 - c0 == 1:
                continue
            right, rsq = (left, lsq) if c0 == r0 else get(c0, c1)
            g = buf[: len(left2) * len(right)].view(len(left2), len(right))
            torch.matmul(left2, right.T, out=g)  # 2t u_i·u_j
            const = 0.0
            if normalize:  # ‖u‖ = 1: −t‖u_i − u_j‖² = 2t u_i·u_j − 2t, the constant kept out of the tile
                const = -2.0 * t
            else:
                g.sub_(lsq[:, None] * t).sub_(rsq[None, :] * t)  # −t‖x_i − x_j‖²
            if c0 == r0:
                g.masked_fill_(lower[: g.shape[0], : g.shape[1]], -math.inf)
            shift = 0.0
            if not bounded:  # exp() could overflow (normalised, large t) or underflow: shift by the maximum
                shift = float(g.max())
                if math.isfinite(shift) and shift:
                    g.sub_(shift)
                else:
                    shift = 0.0
            g.exp_()
            s = float(g.sum(dim=1).to(torch.float64).sum())  # row sums (≤ B terms), then float64
            log_terms.append(const + shift + math.log(s) if s > 0 else -math.inf)
    n_pairs = n * (n - 1) / 2
    m = max(log_terms)
    return m + math.log(math.fsum(math.exp(v - m) for v in log_terms)) - math.log(n_pairs)


def _resident_budget(dev: Any, resident_bytes: int | None) -> int:
    import torch

    if resident_bytes is not None:
        return int(resident_bytes)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return free // 2
    return CPU_RESIDENT_BYTES


def uniformity_sampled(x: Any, t: float = 2.0, *, n_pairs: int = 1_000_000, seed: int = 0,
                       normalize: bool = True, device: Any = None) -> tuple[float, float]:
    """``(log k̂, se(k̂)/k̂)`` from ``n_pairs`` pairs drawn exactly as
    :func:`simcse_analysis.metrics.align_uniform.uniformity_sampled` draws them (same seed, same pairs),
    reading only the sampled rows (float64 throughout)."""
    import torch

    from ._checks import check_positive

    t = check_positive(t, "t")
    if n_pairs < 2:
        raise InputError(f"n_pairs must be >= 2, got {n_pairs}")
    rows = Rows(x, device)
    norms = rows.nonzero_norms() if normalize else rows.norms()
    i, j = random_distinct_pairs(rows.n, n_pairs, seed)
    expo = torch.empty(n_pairs, dtype=torch.float64, device=rows.device)
    for start in range(0, n_pairs, STREAM_BLOCK):
        sl = slice(start, start + STREAM_BLOCK)
        ti, tj = torch.as_tensor(i[sl], device=rows.device), torch.as_tensor(j[sl], device=rows.device)
        dot = torch.linalg.vecdot(rows.take(i[sl], torch.float64), rows.take(j[sl], torch.float64))
        ni, nj = norms[ti], norms[tj]
        # ‖u − v‖² = ‖u‖² + ‖v‖² − 2u·v (float64; on the unit sphere 2 − 2cos)
        sq = 2.0 - 2.0 * dot / (ni * nj) if normalize else ni * ni + nj * nj - 2.0 * dot
        expo[sl] = -t * sq.clamp_(min=0.0)
    shift = float(expo.max())
    k = torch.exp(expo - shift)
    mean = float(k.mean())
    se = float(k.std()) / math.sqrt(n_pairs)  # torch.std is the unbiased (ddof = 1) estimate
    return shift + math.log(mean), se / mean


# ----------------------------------------------------------------------------------------- Gram / spectrum
def column_mean(rows: Rows) -> Any:
    import torch

    total = torch.zeros(rows.d, dtype=torch.float64, device=rows.device)
    for _, b in rows.blocks(torch.float64):
        total += b.sum(dim=0)
    return total / rows.n


def gram(x: Any, *, center: bool = False, device: Any = None, block_size: int = 4096,
         rows: Rows | None = None) -> np.ndarray:
    """``XᵀX`` (centred: ``(X − 1μᵀ)ᵀ(X − 1μᵀ)``) accumulated in float64 on the device → NumPy ``(d, d)``."""
    import torch

    rows = rows or Rows(x, device, min_rows=1)
    mu = column_mean(rows) if center else None
    g = torch.zeros((rows.d, rows.d), dtype=torch.float64, device=rows.device)
    for _, b in rows.blocks(torch.float64, block_size):
        if mu is not None:
            b = b - mu
        g.addmm_(b.T, b)
    g = (g + g.T) / 2  # exactly symmetric
    return g.cpu().numpy()


# ----------------------------------------------------------------------------------------- anisotropy
def mean_cosine(rows: Rows, norms: Any) -> float:
    """``(‖Σ u_i‖² − N) / (N(N−1))`` with ``Σ u_i`` accumulated in float64."""
    import torch

    s = torch.zeros(rows.d, dtype=torch.float64, device=rows.device)
    for start, b in rows.blocks(torch.float64):
        s += (b / norms[start:start + len(b), None]).sum(dim=0)
    n = rows.n
    return float((s @ s - n) / (n * (n - 1)))


def pair_cosines_random(rows: Rows, norms: Any, n_pairs: int, seed: int) -> np.ndarray:
    """Cosines of the ``n_pairs`` pairs :func:`random_distinct_pairs` draws (float64, NumPy)."""
    import torch

    i, j = random_distinct_pairs(rows.n, n_pairs, seed)
    cos = torch.empty(n_pairs, dtype=torch.float64, device=rows.device)
    for start in range(0, n_pairs, STREAM_BLOCK):
        sl = slice(start, start + STREAM_BLOCK)
        ti, tj = torch.as_tensor(i[sl], device=rows.device), torch.as_tensor(j[sl], device=rows.device)
        a, b = rows.take(i[sl], torch.float64), rows.take(j[sl], torch.float64)
        cos[sl] = (a * b).sum(dim=1) / (norms[ti] * norms[tj])
    return cos.cpu().numpy()


def log_partition(rows: Rows, vecs: np.ndarray) -> np.ndarray:
    """``log Z(±v_k) = log Σ_i exp(±v_kᵀ w_i)`` for every column ``v_k`` of ``vecs`` → ``(2d,)`` float64."""
    import torch

    v = torch.as_tensor(vecs, dtype=torch.float64, device=rows.device)
    log_z = torch.full((2 * v.shape[1],), -math.inf, dtype=torch.float64, device=rows.device)
    for _, b in rows.blocks(torch.float64):
        p = b @ v
        log_z = torch.logaddexp(log_z, torch.cat([torch.logsumexp(p, dim=0), torch.logsumexp(-p, dim=0)]))
    return log_z.cpu().numpy()


# ----------------------------------------------------------------------------------------- budget
def uniformity_within_budget(x: Any, t: float = 2.0, *, budget_pairs: int = 10**10, seed: int = 0,
                             device: Any = None, block_size: int = 4096) -> dict[str, Any]:
    """Uniformity of all rows of ``x`` at a stated cost: exact when the ``N(N−1)/2`` distinct pairs fit in
    ``budget_pairs`` kernel evaluations, else the sampled estimate from ``budget_pairs`` random pairs
    with its standard error (``se(k̂)/k̂``, the delta method of ``uniformity_sampled``).

    Returns ``{"uniformity", "stderr" (None when exact), "method": "exact" | "sampled", "n_points",
    "pairs_evaluated", "budget_pairs", "seed", "t"}``.
    """
    if budget_pairs < 2:
        raise InputError(f"budget must be at least 2 pairs, got {budget_pairs}")
    rows = Rows(x, device)
    all_pairs = rows.n * (rows.n - 1) // 2
    if all_pairs <= budget_pairs:
        value = uniformity(x, t, device=device, block_size=block_size)
        return {"uniformity": value, "stderr": None, "method": "exact", "n_points": rows.n,
                "pairs_evaluated": all_pairs, "budget_pairs": int(budget_pairs), "seed": None, "t": t}
    value, se = uniformity_sampled(x, t, n_pairs=int(budget_pairs), seed=seed, device=device)
    return {"uniformity": value, "stderr": se, "method": "sampled", "n_points": rows.n,
            "pairs_evaluated": int(budget_pairs), "budget_pairs": int(budget_pairs), "seed": seed, "t": t}
