"""The torch path of the metrics (run here on the CPU) gives the NumPy path's figures to 1e-6 relative,
accepts tensors and streamed row sources, and its budgeted uniformity's standard error is calibrated."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from simcse_analysis.errors import InputError
from simcse_analysis.metrics import (
    anisotropy_summary,
    gram,
    mean_cosine,
    partition_isotropy,
    random_pair_cosine,
    singular_values,
    spectrum,
    uniformity,
    uniformity_sampled,
)
from simcse_analysis.metrics.device import uniformity_within_budget

REL = 1e-6


def cloud(n: int = 700, d: int = 24, seed: int = 0, shift: float = 0.8) -> np.ndarray:
    """An anisotropic cloud (a common direction plus noise), float32, like sentence embeddings."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * np.linspace(2.0, 0.2, d) + shift
    return x.astype(np.float32)


class Lazy:
    """A row source that is not an array: shape and row slicing / index arrays only (like a store)."""

    def __init__(self, x: np.ndarray) -> None:
        self._x, self.shape = x, x.shape

    def __getitem__(self, item):
        return self._x[item]


@pytest.mark.parametrize("t,normalize", [(2.0, True), (0.5, True), (20.0, True), (2.0, False)])
@pytest.mark.parametrize("block", [4096, 96])
def test_uniformity_torch_cpu_equals_numpy(t, normalize, block):
    x = cloud() if normalize else cloud() * 0.3
    ref = uniformity(x, t, normalize=normalize, precision="float64")
    got = uniformity(x, t, normalize=normalize, device="cpu", block_size=block)
    assert got == pytest.approx(ref, rel=REL)
    got64 = uniformity(x, t, normalize=normalize, device="cpu", block_size=block, precision="float64")
    assert got64 == pytest.approx(ref, rel=1e-12)


def test_uniformity_streams_rows_when_the_matrix_exceeds_the_resident_budget():
    from simcse_analysis.metrics.device import uniformity as on_device

    x = cloud(n=500)
    ref = uniformity(x, precision="float64")
    assert on_device(Lazy(x), block_size=64, resident_bytes=0) == pytest.approx(ref, rel=REL)
    assert on_device(x, block_size=64, resident_bytes=1 << 30) == pytest.approx(ref, rel=REL)


def test_tensors_and_row_sources_are_accepted_as_input():
    x = cloud()
    ref = uniformity(x, precision="float64")
    assert uniformity(torch.from_numpy(x)) == pytest.approx(ref, rel=REL)
    assert uniformity(Lazy(x)) == pytest.approx(ref, rel=REL)
    assert spectrum(torch.from_numpy(x)).effective_rank == pytest.approx(spectrum(x).effective_rank, rel=REL)


def test_sampled_uniformity_draws_the_same_pairs_on_both_paths():
    x = cloud()
    a = uniformity_sampled(x, n_pairs=5000, seed=3)
    b = uniformity_sampled(x, n_pairs=5000, seed=3, device="cpu")
    assert b.value == pytest.approx(a.value, rel=1e-12) and b.stderr == pytest.approx(a.stderr, rel=1e-9)


@pytest.mark.parametrize("center", [False, True])
def test_gram_and_spectrum_torch_cpu_equal_numpy(center):
    x = cloud()
    np.testing.assert_allclose(gram(x, center=center, device="cpu"), gram(x, center=center), rtol=1e-10)
    np.testing.assert_allclose(singular_values(x, center=center, device="cpu"),
                               singular_values(x, center=center), rtol=1e-9)
    a, b = spectrum(x, center=center), spectrum(x, center=center, device="cpu")
    for field in ("effective_rank", "stable_rank", "sigma_max", "condition_number"):
        assert getattr(b, field) == pytest.approx(getattr(a, field), rel=REL), field
    assert b.numerical_rank == a.numerical_rank
    np.testing.assert_allclose(b.singular_values, a.singular_values, rtol=REL, atol=1e-12)


def test_anisotropy_torch_cpu_equals_numpy():
    x = cloud()
    a, b = anisotropy_summary(x, n_pairs=3000, seed=1), anisotropy_summary(x, n_pairs=3000, seed=1, device="cpu")
    for field, value in a.to_dict().items():
        assert getattr(b, field) == pytest.approx(value, rel=REL, abs=1e-12), field
    assert mean_cosine(x, device="cpu") == pytest.approx(mean_cosine(x), rel=REL)
    assert random_pair_cosine(x, 500, 2, device="cpu").mean == pytest.approx(random_pair_cosine(x, 500, 2).mean,
                                                                                rel=REL)
    assert partition_isotropy(x, device="cpu") == pytest.approx(partition_isotropy(x), rel=REL)


def test_bad_input_on_the_torch_path_names_the_row_and_the_device():
    x = cloud(n=50)
    x[17, 3] = np.nan
    with pytest.raises(InputError, match="row 17"):
        uniformity(x, device="cpu")
    y = cloud(n=50)
    y[4] = 0.0
    with pytest.raises(InputError, match="row 4 is the zero vector"):
        anisotropy_summary(y, device="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            uniformity(cloud(n=10), device="cuda")
    with pytest.raises(InputError, match="unknown device"):
        uniformity(cloud(n=10), device="tpu9")


def test_budget_chooses_exact_when_all_pairs_fit_and_sampled_otherwise():
    x = cloud(n=300)
    exact = uniformity_within_budget(x, budget_pairs=300 * 299 // 2)
    assert exact["method"] == "exact" and exact["stderr"] is None
    assert exact["uniformity"] == pytest.approx(uniformity(x, precision="float64"), rel=REL)
    sampled = uniformity_within_budget(x, budget_pairs=300 * 299 // 2 - 1, seed=5)
    assert sampled["method"] == "sampled" and sampled["pairs_evaluated"] == 300 * 299 // 2 - 1
    assert sampled["uniformity"] == pytest.approx(uniformity_sampled(x, n_pairs=44849, seed=5).value, rel=1e-12)


def test_budgeted_standard_error_covers_the_exact_value_in_simulation():
    """Known truth: the exact uniformity of a fixed cloud. Over 300 seeds with a budget of 400 pairs,
    the ±1.96·SE intervals cover it ~95% of the time and the SE matches the spread of the estimates."""
    x = cloud(n=200, d=8, shift=0.3)
    truth = uniformity(x, precision="float64")
    est = [uniformity_within_budget(x, budget_pairs=400, seed=s) for s in range(300)]
    values = np.array([e["uniformity"] for e in est])
    ses = np.array([e["stderr"] for e in est])
    coverage = float(np.mean(np.abs(values - truth) <= 1.96 * ses))
    assert 0.91 <= coverage <= 0.985  # binomial sd at 95%, n = 300: 1.3 points
    assert float(np.mean(ses)) == pytest.approx(float(values.std(ddof=1)), rel=0.15)
    assert abs(float(values.mean()) - truth) < 3 * float(values.std(ddof=1)) / math.sqrt(len(values))
