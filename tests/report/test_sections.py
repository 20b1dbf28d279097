"""Each report section on its own: compute() on a tiny synthetic store of a
known law against values derived by hand from that law, and the three
renderers agreeing (a number of the JSON appears, formatted as the page and
the terminal write it, in the HTML and in the text)."""

import io
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sweep"))
from toy_runner import toy_loss  # noqa: E402  (the sparse law with the coefficients TRUE)

from sparsescale.laws.law import Law  # noqa: E402
from sparsescale.report.points import collect  # noqa: E402
from sparsescale.report.sections import (  # noqa: E402
    calibration,
    comparison,
    fit_figures,
    from_dense,
    law_fit,
    lr_scan,
    patterns,
    recommendation,
    regime,
)
from sparsescale.sweep.spec import dense_tokens_of, expand, spec_from_dict  # noqa: E402
from sparsescale.sweep.store import Store  # noqa: E402

A = 1e4**0.3  # toy_loss's N-term is (2 (1-S)^0.7 + 1) A N^-0.3
TRUE = {"aS": 2 * A, "bS": 0.7, "cS": A, "bN": 0.3, "aD": 2e4, "bD": 0.4, "c": 0.5}
LAW = Law("sparse", dict(TRUE))


def k_unstructured(S):
    """The sparse law's N-term factor aS (1-S)^bS + cS."""
    return (2 * (1 - S) ** 0.7 + 1) * A


def write_store(path, grid, result_of):
    """A store of one sweep over `grid`; result_of(run) gives each run's result."""
    spec = spec_from_dict({"family": "gpt", "grid": grid})
    runs = expand(spec)
    with Store(path) as store:
        store.add_sweep("t", spec.model_dump(mode="json"), runs, path.parent / "runs")
        for run in runs:
            store.mark_running(run.config_hash)
            store.record_result(run.config_hash, result_of(run))
    return path


def exact(run, loss=None):
    """A finished run at exactly its target N, its loss the law's."""
    c = run.config
    y = toy_loss(c["sparsity"], c["params"], c["tokens"]) if loss is None else loss
    return {
        "status": "finished",
        "sparsity": c["sparsity"],
        "pattern": c.get("pattern"),
        "n_nonzero": c["params"],
        "tokens": c["tokens"],
        "final_loss": y,
        "wall_s": 1.0,
        "curve": [
            {"step": s, "tokens": s * c["tokens"] // 2, "val_loss": y + 1.0 / s} for s in (1, 2)
        ],
    }


def text_of(lines) -> str:
    """The terminal's rendering of a to_text (strings, rich Tables and Texts), wide enough not
    to wrap."""
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, width=400, color_system=None)
    for line in lines:
        console.print(line, highlight=False)
    return buf.getvalue()


# Three sparsities, three sizes, four budgets that double: 36 runs of the law itself.
SIZES, BUDGETS = (25_000, 50_000, 100_000), (100_000, 200_000, 400_000, 800_000)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sections")
    store = write_store(
        tmp / "law.sqlite",
        {"sparsity": [0.0, 0.5, 0.75], "n_nonzero": list(SIZES), "tokens": list(BUDGETS)},
        exact,
    )
    pts = collect(store)
    result = law_fit.assess_sweep(
        pts, n_boot=8, seed=0, show_progress=False, fit_settings=law_fit.FIT_SETTINGS
    )
    return SimpleNamespace(store=store, pts=pts, result=result, tmp=tmp)


def test_law_fit_recovers_the_law_and_its_renderings_agree(sweep):
    sec = law_fit.compute(sweep.result, sweep.pts, law_fit.FIT_SETTINGS)
    assert sec.n_points == 36 and sec.budget_unit == "tokens"
    # measured relative error on these noise-free runs: at most 3.1e-15; bootstrap resamples of
    # exact runs give the same law, so every interval collapses onto its value (3.1e-15 too)
    for name, value in TRUE.items():
        assert sec.coefficients[name] == pytest.approx(value, rel=1e-14), name
        lo, med, hi = sec.intervals[name]
        assert lo == pytest.approx(value, rel=1e-14) and hi == pytest.approx(value, rel=1e-14)
    # the equivalent dense size at S: f(S)^(-1/bN), f(S) = k(S) / k(0) (measured: exact)
    for s in (0.5, 0.75):
        assert sec.intervals[f"equivalent dense size at S={s:g}"][1] == pytest.approx(
            (k_unstructured(s) / k_unstructured(0.0)) ** (-1 / 0.3), rel=1e-14
        )
    assert sec.undetermined == [] and set(sec.determined) == set(sec.intervals)
    h = sec.holdout  # the refit without N = 100k predicts its 3 S x 4 D runs
    assert (
        h["held_out_n_nonzero"] == 100_000
        and h["n_heldout"] == 12
        and h["mean_abs_rel_error"] < 1e-15
    )  # measured 1.2e-16

    js = law_fit.to_json(sec)
    page = "".join(law_fit.to_html(sec) + law_fit.holdout_html(sec))
    text = text_of(law_fit.to_text(sec) + law_fit.determination_text(sec))
    for name, value in js["coefficients"].items():
        assert f">{value:.4g}<" in page and f" {value:.4g} " in text, name
        iv = js["intervals"][name]
        assert (
            f"[{iv['low']:.4g}, {iv['high']:.4g}]" in page
            and f"[{iv['low']:.4g}, {iv['high']:.4g}]" in text
        )
    eq = js["intervals"]["equivalent dense size at S=0.75"]
    assert f"{eq['median']:.2f}x [{eq['low']:.2f}, {eq['high']:.2f}]" in page
    assert f"{eq['median']:.2f}x [{eq['low']:.2f}, {eq['high']:.2f}]" in text
    err = f"{js['holdout']['mean_abs_rel_error'] * 100:.2f}%"
    assert f"<b>{err}</b>" in page and f"mean |error| {err}" in text
    assert f"objective {js['objective']:.3g}" in page and f"objective {js['objective']:.3g}" in text


def test_recommendation_plans_the_laws_own_budgets(sweep):
    sec = recommendation.compute(LAW, sweep.pts)
    plans = sec.plans
    assert len(plans) == 7 and all(p.interval is None for p in plans)  # LAW carries no uncertainty
    # the main budget: the largest N on the longest D, C = 6 N D
    assert plans[0].n_nonzero == 100_000 and plans[0].compute_flops == 6 * 100_000 * 800_000
    # then 1x, 5x, 20x the dense compute-optimal budget at N and 10 N: dL/dN = 0 at C = 6 N D gives
    # D*(N) = aD (bD / (bN A0))^(1/bD) N^(bN/bD), A0 = aS + cS. Measured relative errors below:
    # 1.6e-15 (compute), 0 (losses), 5.4e-16 (equivalent dense factor)
    for i, (n, mult) in enumerate(
        [(1e5, 1), (1e5, 5), (1e5, 20), (1e6, 1), (1e6, 5), (1e6, 20)], start=1
    ):
        d_star = 2e4 * (0.4 / (0.3 * 3 * A)) ** (1 / 0.4) * n ** (0.3 / 0.4)
        assert plans[i].n_nonzero == n and plans[i].compute_flops == pytest.approx(
            6 * n * d_star * mult, rel=1e-14
        )
    for p in plans:
        # dense at the same compute trains D = C / (6 N); the plan's loss is the law at its (S, N,
        # D)
        assert p.dense_loss == pytest.approx(
            toy_loss(0.0, p.n_nonzero, p.compute_flops / (6 * p.n_nonzero)), rel=1e-14
        )
        assert p.loss == pytest.approx(toy_loss(p.sparsity, p.n_nonzero, p.data), rel=1e-14)
        assert p.equivalent_dense_factor == pytest.approx(
            (k_unstructured(p.sparsity) / k_unstructured(0.0)) ** (-1 / 0.3), rel=1e-14
        )
    assert plans[0].sparsity > 0.01  # a sparse recommendation: the sentence quotes its numbers

    js = recommendation.to_json(sec)
    page = "".join(
        recommendation.summary_html(sec)
        + recommendation.to_html(sec, {"sopt_contours": _png(sweep)})
    )
    text = text_of(recommendation.to_text(sec))
    main = js[0]
    for s in (
        f"S = {main['sparsity']:.2f}",
        f"C = {main['compute_flops']:.3g}",
        f"predicted loss {main['loss']:.4f}",
        f"{main['equivalent_dense_factor']:.2f}x larger",
    ):
        assert s in page and s in text, s
    for row in js:
        assert (
            f"<td class='num'>{row['sparsity']:.2f}</td>" in page
            and f"{row['dense_loss']:.4f}" in page
        )


def _png(sweep) -> Path:
    """Any PNG, for renderers that embed a figure they were not asked to check."""
    path = sweep.tmp / "any.png"
    if not path.exists():
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(1, 1))
        fig.savefig(path)
        plt.close(fig)
    return path


def test_calibration_says_why_it_is_missing_and_renders_coverage():
    none = calibration.compute(
        SimpleNamespace(calibration=None, warnings=["x", "intervals not calibrated: 2 folds"]), 5
    )
    assert none.calibration is None and none.note == "intervals not calibrated: 2 folds"
    assert calibration.compute(SimpleNamespace(calibration=None, warnings=[]), 0).note.startswith(
        "no bootstrap was run"
    )
    assert (
        calibration.to_text(none) == []
        and "(intervals not calibrated: 2 folds)" in calibration.to_html(none)[0]
    )
    # 9 of 10 held-out runs inside their 95% intervals: 90%
    cal = {
        "coverage": {"0.95": {"covered": 9 / 10, "n_points": 10}},
        "folds": [{}, {}],
        "per_efold": 0.0123,
    }
    sec = calibration.compute(
        SimpleNamespace(calibration=SimpleNamespace(to_dict=lambda: cal), warnings=[]), 5
    )
    js = calibration.to_json(sec)
    assert js == {"calibration": cal, "calibration_note": None}
    covered = f"{js['calibration']['coverage']['0.95']['covered']:.0%}"
    assert covered == "90%"
    assert f"covered <b>{covered}</b> of 10 held-out runs" in calibration.to_html(sec)[0]
    assert "grows by 1.23% per e-fold" in calibration.to_html(sec)[0]
    assert f"covered {covered} of 10 runs held out in 2 rolling holdout(s)" in text_of(
        calibration.to_text(sec)
    )


def test_regime_drops_per_doubling_are_the_laws(sweep):
    sec = regime.compute(sweep.pts)
    assert len(sec.series) == 9 and sec.warning is None
    # at fixed S and N, L(D) - L(2D) = (aD/D)^bD (1 - 2^-bD)
    drops = [(2e4 / d) ** 0.4 * (1 - 2**-0.4) for d in BUDGETS[:-1]]
    for x in sec.series:
        assert x["verdict"] == "power law" and x["data"] == list(map(float, BUDGETS))
        assert x["drops"] == pytest.approx(drops, rel=1e-14)  # measured 4e-15
    js = regime.to_json(sec)
    page = "".join(regime.to_html(sec))
    assert "Here 9 of 9 series follow a power law" in page and page.count("<tr>") == 9 + 1
    for x in js:
        assert f"<td>{', '.join(f'{v:.3f}' for v in x['drops'])}</td>" in page
    assert regime.to_text(sec) == []  # the terminal shows a regime only as its warning


def test_comparison_quotes_both_laws_sopt(sweep):
    rec = recommendation.compute(LAW, sweep.pts)
    sec, avg = comparison.compute(sweep.pts, rec, 0, law_fit.FIT_SETTINGS)
    assert [sc["form"] for sc in sec.scores] == ["sparse", "avgparam"] and sec.favoured == "sparse"
    assert sec.sopt["sparse"] == [p.sparsity for p in rec.plans]
    gap = max(abs(a - b) for a, b in zip(sec.sopt["sparse"], sec.sopt["avgparam"]))
    assert sec.max_sopt_gap == gap and sec.disagree == (gap > comparison.SOPT_DISAGREE)
    assert avg.form == "avgparam" and avg.name == "average-parameter law"
    js = comparison.to_json(sec)
    figs = {"sopt_contours": _png(sweep), "sopt_contours_avgparam": _png(sweep)}
    page = "".join(comparison.to_html(sec, rec, figs))
    text = text_of(comparison.to_text(sec))
    for sc in js["scores"]:
        assert f"<td class='num'>{sc['aicc']:.1f}</td>" in page
    assert js["verdict"] in text and js["verdict"].replace("'", "&#x27;") in page
    if js["disagree"]:
        i = int(
            np.argmax([abs(a - b) for a, b in zip(js["sopt"]["sparse"], js["sopt"]["avgparam"])])
        )
        assert (
            f"the sparse law says S = {js['sopt']['sparse'][i]:.2f}" in page and "disagree" in text
        )


def test_fit_figures_are_drawn_and_embedded(sweep, tmp_path):
    sec = fit_figures.compute(LAW, sweep.pts, None, tmp_path)
    assert fit_figures.to_json(sec) == {
        k: f"{k}.png" for k in ("loss_curves", "loss_vs_n", "fit_quality", "sopt_contours")
    }
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in sec.paths.values())
    page = "".join(fit_figures.to_html(sec))
    assert (
        page.count('<img src="data:image/png;base64,') == 3
    )  # the S_opt map is the recommendation's
    assert fit_figures.to_text(sec) == []


def test_lr_scan_keeps_each_points_best_lr(tmp_path):
    """Loss = the law + 0.01 log2(lr / 0.01)^2, so lr 0.01 wins, except at one
    point where the largest lr is 0.05 better than the law: a winner at the edge."""

    def result(run):
        c = run.config
        y = (
            toy_loss(c["sparsity"], c["params"], c["tokens"])
            + 0.01 * math.log2(c["lr"] / 0.01) ** 2
        )
        if (c["sparsity"], c["params"], c["lr"]) == (0.5, 50_000, 0.02):
            y -= 0.06  # 0.01 above the law, 0.05 below it
        return exact(run, y)

    store = write_store(
        tmp_path / "lr.sqlite",
        {
            "sparsity": [0.0, 0.5],
            "n_nonzero": ["25k", "50k"],
            "tokens": ["100k", "400k"],
            "lr": [0.005, 0.01, 0.02],
        },
        result,
    )
    sec = lr_scan.compute(collect(store))
    assert len(sec.rows) == 8
    for r in sec.rows:
        edge = r["lr"] == 0.02
        assert r["edge"] == edge and r["lr"] == (0.02 if edge else 0.01)
        assert set(r["losses"]) == {0.005, 0.01, 0.02} and r["loss"] == min(r["losses"].values())
    assert sum(r["edge"] for r in sec.rows) == 2  # S = 0.5, N = 50k at both budgets
    for r in sec.rows:
        a = r["axes"]
        law = toy_loss(a["sparsity"], a["n_nonzero"], a["tokens"])
        assert r["loss"] == pytest.approx(law - 0.05 if r["edge"] else law, rel=1e-15)
    js = lr_scan.to_json(sec)
    page = "".join(lr_scan.to_html(sec))
    for row in js:
        assert set(row["losses"]) == {"0.005", "0.01", "0.02"}
        assert f"<td>{row['lr']:g}</td><td>{row['loss']:.4f}</td>" in page
        assert ", ".join(f"{lr}: {x:.4f}" for lr, x in row["losses"].items()) in page
    assert page.count("<td>edge</td>") == 2 and lr_scan.to_text(sec) == []


def test_from_dense_charges_the_prefix_in_full(tmp_path):
    """Pruned runs continue dense prefixes of 100k tokens; a run's total FLOPs
    are its own sparse phase plus the whole prefix at dense cost."""
    recorded = []  # every run's own sparse FLOPs, prefixes included

    def result(run):
        c = run.config
        S, n = c["sparsity"], c["params"]
        d_total = run.axes["tokens"]
        y = toy_loss(S, n, d_total) - (0.02 if dense_tokens_of(run.axes) else 0.0)
        recorded.append(6.0 * n * c["tokens"])
        return exact(run, y) | {
            "train_flops_sparse": 6.0 * n * c["tokens"],
            "train_flops_dense": 6.0 * n / (1 - S) * c["tokens"],
        }

    store = write_store(
        tmp_path / "fd.sqlite",
        {
            "sparsity": [0.0, 0.5],
            "n_nonzero": ["25k", "50k"],
            "tokens": ["400k", "800k"],
            "dense_tokens": [0, "100k"],
        },
        result,
    )
    sec = from_dense.compute(store, None, tmp_path, LAW, n_boot=0, seed=0)
    # the pruned runs: S = 0.5 x N x D (a dense prefix continued dense is a dense run)
    assert len(sec.table) == 4 and sec.budget_unit == "tokens"
    for r in sec.table:
        S, n, D, d0 = r["sparsity"], r["n_target"], r["data"], r["dense_prefix"]
        assert d0 == 100_000
        # 6 N (D - D0) for the sparse continuation + 6 (N / (1 - S)) D0 for the dense prefix
        # (measured: exact)
        assert r["flops"] == pytest.approx(6 * n * (D - d0) + 6 * n / (1 - S) * d0, rel=1e-15)
        assert r["loss"] == pytest.approx(toy_loss(S, n, D) - 0.02, rel=1e-15)
        assert r["saving_prefix_charged"] == pytest.approx(
            r["scratch_flops_for_same_loss"] / r["flops"], rel=1e-15
        )
    # the sweep trained each run's own phase once (prefixes once); alone, every run pays its prefix
    assert sec.sweep_total_flops["sparse"] == pytest.approx(sum(recorded), rel=1e-15)
    assert sec.alone_total_flops > sec.sweep_total_flops["sparse"]

    js = from_dense.to_json(sec)
    page = "".join(from_dense.to_html(sec, tmp_path))
    text = text_of(from_dense.to_text(sec))
    assert (
        f"{js['sweep_total_flops']['sparse']:.3g} FLOPs" in page
        and f"{js['sweep_total_flops']['sparse']:.3g} FLOPs" in text
    )
    assert f"pruned from dense: {len(js['table'])} runs" in text
    for row in js["table"]:
        assert f"<td class=num>{row['flops']:.3g}</td><td class=num>{row['loss']:.4f}</td>" in page
    if sec.law is None:
        assert "coefficients" not in js and any(
            "pruned law not fitted" in w for w in js["warnings"]
        )
    else:
        for k, v in js["coefficients"].items():
            assert f"<td>{k}</td><td class=num>{v:.4g}</td>" in page and f"{k}={v:.3g}" in text


def test_patterns_refit_k_and_measure_the_gap(tmp_path):
    """2:4 runs (S = 0.5) whose N-term factor is 1.1 times the sparse law's at
    S = 0.5: the refit finds k_ratio 1.1, and the measured gap to the
    unstructured twin is 0.1 k(0.5) N^-0.3."""

    def result(run):
        c = run.config
        S, n, D = c["sparsity"], c["params"], c["tokens"]
        y = toy_loss(S, n, D) + (0.1 * k_unstructured(S) * n**-0.3 if c.get("pattern") else 0.0)
        return exact(run, y) | {"model_config": {"depth": 2, "width": 32, "mlp_hidden": 64}}

    store = write_store(
        tmp_path / "nm.sqlite",
        {
            "sparsity": [0.0, 0.5],
            "n_nonzero": ["25k", "50k", "100k"],
            "tokens": ["100k", "400k"],
            "patterns": ["unstructured", "2:4"],
        },
        result,
    )
    pts = collect(store)
    sec = patterns.compute(store, None, LAW, pts, tmp_path, n_boot=0, seed=0)
    e = sec.laws["patterns"]["2:4"]
    assert set(sec.laws["patterns"]) == {"2:4"} and e["sparsity"] == 0.5 and e["n_runs"] == 6
    q = e["quantities"]
    # measured relative error of the refit on these exact runs: 4e-16 (k_ratio), 1.8e-16 (k)
    assert q["k_ratio"]["value"] == pytest.approx(1.1, rel=1e-14)
    assert q["k"]["value"] == pytest.approx(1.1 * k_unstructured(0.5), rel=1e-14)
    gaps = sec.measured_gaps["2:4"]
    assert len(gaps) == 6 and all(g["same_shape"] for g in gaps)
    for g in gaps:
        assert g["gap"] == pytest.approx(
            0.1 * k_unstructured(0.5) * g["n_nonzero"] ** -0.3, rel=1e-14
        )  # measured 1.2e-15
    assert sec.determined["2:4"]["assessed"] is False  # no bootstrap
    assert sec.figure.read_bytes()[:4] == b"\x89PNG"

    js = patterns.to_json(sec)
    assert js["figure"] == "patterns_loss_vs_n.png"
    page = "".join(patterns.to_html(sec))
    text = text_of(patterns.to_text(sec))
    ratio = js["laws"]["patterns"]["2:4"]["quantities"]["k_ratio"]["value"]
    assert f"<td class='num'>{ratio:.3f}</td>" in page and f"N-term factor {ratio:.3f} x" in text
    mean = np.mean([g["gap"] for g in js["measured_gaps"]["2:4"]])
    assert f"{mean:+.4f} (6 of 6 pairs)" in page and f"mean {mean:+.4f} (6 of 6 pairs)" in text
