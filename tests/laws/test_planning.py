"""Check values from paper-notes section 4 (ViT/JFT law), within 1%."""

import numpy as np
import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.laws.planning import (
    c_mul,
    chinchilla_data,
    equivalent_dense_factor,
    mean_sparsity_fraction,
    optimal_data_ratio,
    optimal_sparsity,
    optimal_sparsity_grid,
    training_flops,
)
from sparsescale.laws.presets import preset

VIT, T5 = preset("vit-jft"), preset("t5-c4")


def test_c_mul_default_schedule_is_the_papers_closed_form():
    S = np.linspace(0, 0.95, 20)
    assert np.allclose(c_mul(S, "sparse"), (1 - 0.625 * S) / (1 - S))
    assert np.allclose(c_mul(S, "dense"), 1 / (1 - S))


@pytest.mark.parametrize("start, end", [(0.25, 0.75), (0.0, 1.0), (0.1, 0.5), (0.5, 0.9)])
def test_mean_sparsity_fraction_matches_numeric_integral_of_cubic_schedule(start, end):
    t = (np.arange(200_000) + 0.5) / 200_000
    p = np.clip((t - start) / (end - start), 0, 1)
    assert mean_sparsity_fraction(start, end) == pytest.approx(np.mean(1 - (1 - p) ** 3), rel=1e-6)


def test_bad_schedule_fractions():
    with pytest.raises(SparsescaleError, match="start < end"):
        c_mul(0.5, "sparse", start=0.8, end=0.3)
    with pytest.raises(SparsescaleError, match="flops: expected"):
        c_mul(0.5, "both")


@pytest.mark.parametrize(
    "flops, expected", [("sparse", [1.22, 3.09, 6.99]), ("dense", [2.41, 4.56, 8.65])]
)
def test_optimal_data_ratios(flops, expected):
    ratios = optimal_data_ratio(VIT, np.array([0.5, 0.75, 0.875]), flops)
    assert np.allclose(ratios, expected, rtol=0.01)


@pytest.mark.parametrize(
    "flops, expected", [("sparse", [0.54, 0.71, 0.80, 0.86]), ("dense", [0.21, 0.51, 0.66, 0.76])]
)
def test_s_opt_at_n_1e7(flops, expected):
    N = 1e7
    d_star = chinchilla_data(VIT, N)
    got = [optimal_sparsity(VIT, N, k * 6 * N * d_star, flops).sparsity for k in (2, 5, 10, 20)]
    assert np.allclose(got, expected, rtol=0.01)


def test_s_opt_agrees_with_brute_force_and_closed_form_ratio():
    N, C = 3e7, 2e18
    point = optimal_sparsity(VIT, N, C, "sparse")
    S = np.linspace(0, 0.9999, 200_001)
    L = VIT.predict(S, N, C / (6 * N * c_mul(S, "sparse")))
    assert point.sparsity == pytest.approx(S[np.argmin(L)], abs=1e-4)
    assert point.loss <= L.min() + 1e-12
    # at the optimum, D/D* is exactly the closed-form ratio for that S
    assert point.data / chinchilla_data(VIT, N) == pytest.approx(
        optimal_data_ratio(VIT, point.sparsity), rel=1e-4
    )
    # ratios do not depend on N
    assert chinchilla_data(VIT, 1e9) / chinchilla_data(VIT, 1e7) == pytest.approx(
        100 ** (VIT["bN"] / VIT["bD"])
    )
    assert training_flops(N, point.data, point.sparsity) == pytest.approx(C)
    grid = optimal_sparsity_grid(VIT, np.array([N]), np.array([C]), resolution=4001)
    assert grid[0] == pytest.approx(point.sparsity, abs=5e-4)


def test_chinchilla_line_is_the_dense_compute_optimum():
    C = 1e19
    Ns = np.geomspace(1e6, 1e10, 100_001)
    L = VIT.predict(0.0, Ns, C / (6 * Ns))
    n_opt = Ns[np.argmin(L)]
    assert C / (6 * n_opt) == pytest.approx(chinchilla_data(VIT, n_opt), rel=1e-3)


@pytest.mark.parametrize(
    "law, expected",
    [(VIT, [1.60, 2.17, 2.63, 3.47]), (T5, [1.59, 2.16, 2.63, 3.64])],
)
def test_equivalent_dense_sizes(law, expected):
    got = equivalent_dense_factor(law, np.array([0.5, 0.75, 0.875, 1 - 1e-12]))
    assert np.allclose(got, expected, rtol=0.01)


def test_optimal_point_reports_dense_baseline_and_bad_inputs():
    p = optimal_sparsity(VIT, 1e7, 1e18)
    assert p.loss < p.dense_loss and p.dense_data == pytest.approx(1e18 / 6e7)
    assert p.equivalent_dense_size == pytest.approx(1e7 * equivalent_dense_factor(VIT, p.sparsity))
    with pytest.raises(SparsescaleError, match="compute: must be"):
        optimal_sparsity(VIT, 1e7, -1)
    with pytest.raises(SparsescaleError, match="n_nonzero:"):
        optimal_sparsity(VIT, 0, 1e18)


def test_a_law_without_an_n_term_has_no_finite_chinchilla_line():
    # A = aS + cS = 0 (a bootstrap draw of a flat sweep): a larger model never
    # pays, so D*(N) = aD (bD / (bN A))^(1/bD) N^(bN/bD) is infinite, and
    # planning says so instead of dividing by zero.
    from sparsescale.laws.law import Law

    flat = Law(
        "sparse", {**{k: float(v) for k, v in VIT.coefficients.items()}, "aS": 0.0, "cS": 0.0}
    )
    assert chinchilla_data(flat, 1e7) == np.inf
    with np.errstate(invalid="ignore"):  # the sparsity factor is 0/0 for such a law
        point = optimal_sparsity(flat, 1e7, 1e18)
    assert point.compute_vs_dense_optimal == 0.0 and 0.0 <= point.sparsity < 1.0
