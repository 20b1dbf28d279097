"""laws.from_dense: the equal-compute comparison, the pruned law and the
from-dense plan, against closed forms and brute force."""

import math

import numpy as np
import pytest

from sparsescale.errors import SparsescaleError
from sparsescale.laws import from_dense as pre
from sparsescale.laws.law import Law
from sparsescale.laws.points import FitOptions, Points

# A law of the scale the pretrained preset measures (GPT, bytes, 1e4-1e5 non-zeros, ~1e6 tokens).
TRUE = {"aS": 40.0, "bS": 0.8, "cS": 25.0, "bN": 0.35, "aD": 3.0e4, "bD": 0.3, "c": 1.0}


def pruned_law(**fit) -> Law:
    meta = {"from_dense": {"dense_fraction": [0.25, 0.5], "dense_prefixes": [4e5, 8e5]}} | fit
    return Law(form="sparse", coefficients=dict(TRUE), name="pruned", fit=meta, tokens_per_unit=1.0)


def test_loss_at_compute_interpolates_in_log_log_and_never_extrapolates():
    flops = [1e9, 4e9]
    loss = [3.0, 3.0 * 4**-0.1]  # a power law L = 3 (C/1e9)^-0.1
    assert pre.loss_at_compute(flops, loss, 2e9) == pytest.approx(3.0 * 2**-0.1)
    assert pre.loss_at_compute(flops, loss, 1e9) == pytest.approx(3.0)
    assert (
        pre.loss_at_compute(flops, loss, 5e9) is None
        and pre.loss_at_compute(flops, loss, 5e8) is None
    )


def test_equal_compute_table_reads_each_method_at_the_pruned_runs_compute():
    pts = [
        {
            "method": pre.SCRATCH,
            "sparsity": 0.5,
            "n_target": 100,
            "data": d,
            "loss": 3.0 * (d / 1e5) ** -0.1,
            "flops": 10.0 * d,
            "flops_continuation": 10.0 * d,
        }
        for d in (1e5, 4e5)
    ]
    pts += [
        {
            "method": pre.DENSE,
            "sparsity": 0.0,
            "n_target": 100,
            "data": d,
            "loss": 3.2 * (d / 1e5) ** -0.1,
            "flops": 8.0 * d,
            "flops_continuation": 8.0 * d,
        }
        for d in (1e5, 4e5)
    ]
    pts.append(
        {
            "method": pre.PRUNED,
            "sparsity": 0.5,
            "n_target": 100,
            "data": 2e5,
            "dense_prefix": 1e5,
            "loss": 2.5,
            "flops": 2e6,
            "flops_continuation": 1.2e6,
        }
    )
    (row,) = pre.equal_compute_table(pts)
    assert row["scratch_loss"] == pytest.approx(3.0 * 2**-0.1)  # scratch at 2e6 FLOPs: d = 2e5
    assert row["dense_loss"] == pytest.approx(3.2 * 2.5**-0.1)  # dense at 2e6 FLOPs: d = 2.5e5
    assert row["scratch_loss_at_continuation"] == pytest.approx(3.0 * 1.2**-0.1)
    assert pre.frontier(pts, pre.SCRATCH) == [(1e6, 3.0), (4e6, pytest.approx(3.0 * 4**-0.1))]


def test_scratch_compute_for_loss_inverts_the_law():
    law = pruned_law()
    n, s, d = 3e4, 0.5, 7e5
    target = float(law.predict(s, n, d))
    c = pre.scratch_compute_for_loss(law, s, n, target)
    assert c == pytest.approx(6 * n * d * (1 - 0.625 * s) / (1 - s), rel=1e-9)
    assert (
        pre.scratch_compute_for_loss(law, s, n, float(law.predict(s, n, np.inf)) - 1e-3) == math.inf
    )


@pytest.mark.parametrize("flops", ["sparse", "dense"])
def test_plan_from_dense_is_the_brute_force_optimum_of_the_budget(flops):
    law = pruned_law()
    n, d0, c = 1e5, 8e5, 6 * 1e5 * 8e5  # as much compute again as the pretraining
    plan = pre.plan_from_dense(law, n, d0, c, flops=flops)
    S = np.linspace(0, 0.999, 20001)
    density = 1 - 0.625 * S if flops == "sparse" else np.ones_like(S)
    d1 = c / (6 * n * density)
    brute = law.predict(S, n * (1 - S), d0 + d1)
    assert plan.loss <= brute.min() + 1e-9 and abs(plan.sparsity - S[np.argmin(brute)]) < 2e-3
    assert 6 * n * plan.continue_data * (
        1 - 0.625 * plan.sparsity if flops == "sparse" else 1
    ) == pytest.approx(c)
    assert plan.dense_loss == pytest.approx(float(law.predict(0, n, d0 + c / (6 * n))))
    assert plan.dense_fraction == pytest.approx(d0 / (d0 + plan.continue_data))
    assert plan.intervals is None and plan.to_dict()["extrapolated"] is (
        not 0.2 <= plan.dense_fraction <= 0.625
    )


def test_plan_from_dense_refuses_other_laws_and_useless_budgets():
    plain = Law(form="sparse", coefficients=dict(TRUE))
    with pytest.raises(SparsescaleError, match="not a pruned-from-dense law"):
        pre.plan_from_dense(plain, 1e5, 8e5, 1e12)
    with pytest.raises(SparsescaleError, match="^compute: .*nothing to prune over"):
        pre.plan_from_dense(pruned_law(), 1e5, 8e5, 6 * 1e5 * 8e5 * 1e-4)
    with pytest.raises(SparsescaleError, match="^n_params: must be a positive"):
        pre.plan_from_dense(pruned_law(), -1, 8e5, 1e12)


def test_fit_pruned_law_recovers_a_known_law_and_records_the_fractions():
    rng = np.random.default_rng(0)
    rows = []
    for n in (1.25e4, 2.5e4, 5e4, 1e5):
        for d in (4e5, 8e5, 1.6e6):
            rows.append((0.0, n, d, 0.0))
            for s in (0.5, 0.75):
                for d0 in (4e5, 8e5):
                    if d0 < d:
                        rows.append((s, n, d, d0))
    S, N, D, D0 = (np.array(c) for c in zip(*rows))
    L = Law(form="sparse", coefficients=TRUE).predict(S, N, D) * np.exp(rng.normal(0, 1e-3, len(S)))
    res = pre.fit_pruned_law(
        Points(S, N, D, L, dense_tokens=D0), FitOptions(seed=0, tokens_per_unit=1.0), n_boot=12
    )
    info = pre.from_dense_info(res.law)
    assert info["dense_fraction"] == [0.25, 0.5] and info["n_dense_runs"] == 12
    assert info["n_pruned_runs"] == int((D0 > 0).sum())
    pred = res.law.predict(S, N, D)
    assert np.max(np.abs(pred / L - 1)) < 5e-3
    plan = pre.plan_from_dense(res.law, 1e5, 8e5, 6 * 1e5 * 8e5)
    lo, hi = plan.intervals["loss"]
    assert (
        lo <= plan.loss <= hi
        and plan.intervals["sparsity"][0] <= plan.sparsity <= plan.intervals["sparsity"][1]
    )
    with pytest.raises(SparsescaleError, match="^dense_tokens: no pruned"):
        pre.fit_pruned_law(Points(S, N, D, L, dense_tokens=np.zeros_like(D0)))
