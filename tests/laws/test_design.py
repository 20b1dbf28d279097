"""laws.design: the criterion against closed forms and brute force."""

import itertools

import numpy as np
import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.laws.design import (
    candidate_grid,
    extend_axis,
    greedy_batch,
    parse_axis,
    parse_target,
    predict_draws,
    propose,
    run_flops,
)
from sparsescale.laws.paper import paper_points
from sparsescale.laws.planning import c_mul
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.presets import preset


def _random_cov(k, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(200, k + 1)) @ rng.normal(size=(k + 1, k + 1))
    return np.cov(A, rowvar=False)


def test_sequential_conditioning_equals_conditioning_on_the_batch():
    cov, noise = _random_cov(6), 0.3
    chosen, shares, left = greedy_batch(cov, noise, np.ones(6), budget=4.0, min_share=0.0)
    B = [1 + c for c in chosen]
    exact = cov[0, 0] - cov[0, B] @ np.linalg.solve(
        cov[np.ix_(B, B)] + noise * np.eye(len(B)), cov[B, 0]
    )
    assert left == pytest.approx(exact, rel=1e-10)
    assert sum(shares) * cov[0, 0] == pytest.approx(cov[0, 0] - exact, rel=1e-10)


def test_greedy_picks_the_best_gain_per_flop_and_respects_the_budget():
    cov, noise = _random_cov(8, 1), 0.1
    flops = np.array([1.0, 2.0, 3.0, 1.0, 5.0, 2.0, 1.0, 4.0])
    gain = cov[0, 1:] ** 2 / (np.diag(cov)[1:] + noise)
    chosen, _, _ = greedy_batch(cov, noise, flops, budget=6.0, min_share=0.0)
    assert chosen[0] == int(np.argmax(gain / flops))
    assert flops[chosen].sum() <= 6.0
    # first pick is optimal among single runs; a brute-force best pair of cost <= 2 is no better
    # than greedy's
    # variance after two unit-cost picks when only unit-cost runs are affordable
    unit = [i for i in range(8) if flops[i] == 1.0]
    best_pair = min(
        cov[0, 0]
        - cov[0, [1 + a, 1 + b]]
        @ np.linalg.solve(
            cov[np.ix_([1 + a, 1 + b], [1 + a, 1 + b])] + noise * np.eye(2), cov[[1 + a, 1 + b], 0]
        )
        for a, b in itertools.combinations(unit, 2)
    )
    _, _, left2 = greedy_batch(
        cov, noise, np.where(flops == 1.0, 1.0, 99.0), budget=2.0, min_share=0.0
    )
    assert left2 >= best_pair - 1e-12  # greedy is never better than the optimum ...
    assert left2 <= cov[0, 0]  # ... and never worse than doing nothing


def test_targets_parse_and_bad_ones_name_the_flag():
    assert parse_target("sopt:N=1e8,C=1e20").values == {"N": 1e8, "C": 1e20}
    assert parse_target("equivalent-size:S=0.75").of(preset("t5-c4")) == pytest.approx(
        2.16, abs=0.01
    )
    law = preset("vit-jft")
    assert parse_target("loss:S=0.5,N=1e7,D=1e9").of(law) == pytest.approx(
        float(law.predict(0.5, 1e7, 1e9))
    )
    for bad in (
        "sopt:N=1e8",
        "nope:S=1",
        "loss:S=0.5,N=1,D=-1",
        "equivalent-size:S=1",
        "sopt:N=1e8,C=1e20,X=1",
    ):
        with pytest.raises(SparsescaleError, match="--t"):
            parse_target(bad, "--t")


def test_axes_ranges_extensions_and_the_candidate_grid():
    assert parse_axis("1e6:1e8:3", "--params", "n_nonzero") == pytest.approx([1e6, 1e7, 1e8])
    assert parse_axis("0:0.75:3", "--sparsity", "sparsity") == pytest.approx([0.0, 0.5, 0.75])
    assert extend_axis([1e6, 2e6, 4e6], "n_nonzero") == pytest.approx([5e5, 1e6, 2e6, 4e6, 8e6])
    assert extend_axis([0.0, 0.5, 0.75], "sparsity") == pytest.approx([0.0, 0.5, 0.75, 0.875])
    grid = candidate_grid([0.0, 0.5], [1e6, 2e6], [1e3], done=[[0.5, 1e6 * (1 + 1e-5), 1e3]])
    assert grid.tolist() == [[0.0, 1e6, 1e3], [0.0, 2e6, 1e3], [0.5, 2e6, 1e3]]
    assert run_flops(0.5, 1e6, 1e3, 2.0) == pytest.approx(6 * 1e6 * 1e3 * 2 * float(c_mul(0.5)))


def test_predict_draws_is_the_law():
    law = preset("t5-c4")
    row = np.array([[law[k] for k in law.coefficients]])
    S, N, D = np.array([0.0, 0.5]), np.array([1e7, 1e8]), np.array([1e5, 2e5])
    assert np.allclose(predict_draws(row, S, N, D)[0], law.predict(S, N, D), rtol=1e-12)


def test_propose_on_t5_stays_in_budget_and_expects_a_narrower_interval():
    S, N, D, y = paper_points("paper:t5")
    cands = candidate_grid(
        [0.0, 0.5, 0.75, 0.875, 0.9375],
        [3.3e5, 1.3e6, 5.3e6, 2.1e7],
        [1.25e5, 2e6],
        done=np.column_stack([S, N, D]),
    )
    p = propose(
        Points(S, N, D, y),
        parse_target("equivalent-size:S=0.75"),
        cands,
        5e18,
        FitOptions(tokens_per_unit=65536.0, space="log", delta=1e-3),
        n_boot=60,
    )
    assert p.runs and p.spent_flops <= 5e18
    assert 0 < p.expected_width < p.width
    assert sum(r["variance_share"] for r in p.runs) < 1
