"""report: from a store of known results to a fitted law, figures and one
self-contained HTML page (opened for real in headless Chromium)."""

import base64
import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sweep"))
from toy_runner import toy_loss  # noqa: E402  (a law of known coefficients)

from sparsescale.errors import SparsescaleError  # noqa: E402
from sparsescale.laws.points import FitOptions, Points
from sparsescale.report.build import build_report, collect  # noqa: E402
from sparsescale.sweep.spec import expand, spec_from_dict  # noqa: E402
from sparsescale.sweep.store import Store  # noqa: E402

# toy_loss(S, N, D) = (2 (1-S)^0.7 + 1) (N/1e4)^-0.3 + (2e4/D)^0.4 + 0.5, i.e. the sparse law with
TRUE = {"bS": 0.7, "bN": 0.3, "aD": 2e4, "bD": 0.4, "c": 0.5, "aS": 2 * 1e4**0.3, "cS": 1e4**0.3}


def make_store(
    path,
    diverge=True,
    sizes=("25k", "50k", "100k", "200k"),
    window=None,
    noise=0.0,
    loss_fn=toy_loss,
    n_jitter=0.005,
):
    """A store of toy_loss runs; noise: relative standard deviation of a seeded
    lognormal error on each final loss (0: the law exactly). Each run's measured
    N differs from its target by up to n_jitter (as the sizer lands), and the
    loss is the law at the measured N: a fit on the target N is off."""
    rng = np.random.default_rng(1)
    spec = spec_from_dict(
        {
            "family": "gpt",
            "grid": {
                "sparsity": [0.0, 0.5, 0.75, 0.875],
                "n_nonzero": list(sizes),
                "tokens": ["100k", "400k", "1.6M"],
            },
        }
    )
    runs = expand(spec)
    with Store(path) as store:
        store.add_sweep("toy", spec.model_dump(mode="json"), runs, path.parent / "runs")
        for i, run in enumerate(runs):
            c = run.config
            n = round(c["params"] * (1 + n_jitter * np.sin(1.7 * i)))
            loss = loss_fn(c["sparsity"], n, c["tokens"]) * float(
                np.exp(noise * rng.standard_normal())
            )
            result = {
                "status": "finished",
                "sparsity": c["sparsity"],
                "pattern": None,
                "n_nonzero": n,
                "tokens": c["tokens"],
                "final_loss": loss,
                "wall_s": 1.0,
                "curve": [
                    {"step": s, "tokens": s * c["tokens"] // 4, "val_loss": loss + 2.0 / s}
                    for s in (1, 2, 3, 4)
                ],
            }
            if window is not None:
                result.update(prune_start=window[0], prune_end=window[1])
            if diverge and i == 5:
                result.update(status="diverged", final_loss=float("nan"), diverged_at_step=17)
            store.mark_running(run.config_hash)
            store.record_result(run.config_hash, result)
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    store = make_store(tmp / "toy.sqlite")
    return build_report(store, tmp / "out", n_boot=30, seed=0, show_progress=False)


def test_fit_recovers_the_law_and_excludes_the_diverged_run(report):
    assert report.n_points == 4 * 4 * 3 - 1
    # Measured relative error on this noise-free store: at most 2.3e-15 (bD). Fitting
    # the target N instead of the measured one is off by 5e-5 (bS) to 3.3e-3 (bD).
    for name, value in TRUE.items():
        assert report.coefficients[name] == pytest.approx(value, rel=1e-6), name
    assert report.holdout["mean_abs_rel_error"] < 1e-3
    assert any("diverged at step 17" in w and "excluded from the fit" in w for w in report.warnings)
    lo, _, hi = report.intervals["bN"]
    assert lo <= report.coefficients["bN"] <= hi
    assert 0.0 <= report.recommendations[0]["sparsity"] < 1.0


def test_report_html_is_self_contained_with_every_section(report):
    page = report.html.read_text()
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == len(
        report.figures
    )  # each figure once (5 when the two laws' S_opt maps disagree)
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing external
    for needle in (
        "Loss curves",
        "Loss against size",
        "Predicted against measured",
        "Optimal sparsity",
        "95% interval",
        "diverged at step 17",
        "train at S =",
        "Chinchilla",
    ):
        assert needle in page, needle
    assert (report.out_dir / "law.json").exists() and (report.out_dir / "summary.json").exists()


CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian package `chromium`)"
)
def test_report_opens_in_headless_chromium_with_every_image_loaded(report, tmp_path):
    # A copy of the page with a script that writes each image's natural size into the DOM.
    probe = tmp_path / "probe.html"
    probe.write_text(
        report.html.read_text().replace(
            "</body>",
            "<script>window.addEventListener('load', () => { const p = "
            "document.createElement('pre');"
            " p.id = 'sizes'; p.textContent = Array.from(document.images).map(i => i.complete + "
            "':' + i.naturalWidth"
            " + 'x' + i.naturalHeight).join(' '); document.body.appendChild(p); "
            "});</script></body>",
        )
    )
    flags = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        flags + ["--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    sizes = re.search(r'<pre id="sizes">([^<]*)</pre>', dom.stdout)
    assert sizes, dom.stderr[-2000:]
    entries = sizes.group(1).split()
    assert len(entries) == len(report.figures)
    for e in entries:
        complete, wh = e.split(":")
        w, h = (int(x) for x in wh.split("x"))
        assert complete == "true" and w > 300 and h > 200, e
    shot = tmp_path / "shot.png"
    subprocess.run(
        flags + [f"--screenshot={shot}", "--window-size=1200,1600", report.html.as_uri()],
        capture_output=True,
        timeout=120,
    )
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)
    assert pixels.shape[0] >= 1000 and np.std(pixels[..., :3]) > 0.05  # not a blank page


def test_too_few_runs_is_a_clear_error(tmp_path):
    store = tmp_path / "s.sqlite"
    spec = spec_from_dict(
        {"family": "gpt", "grid": {"sparsity": [0.0, 0.5], "n_nonzero": ["50k"], "tokens": ["1M"]}}
    )
    with Store(store) as s:
        s.add_sweep("t", {}, expand(spec), tmp_path)
    with pytest.raises(
        SparsescaleError, match="0 finished runs; fitting the sparse law needs at least 8"
    ):
        collect(store)


def test_report_states_the_runs_pruning_window_and_the_fits_delta(tmp_path):
    store = make_store(tmp_path / "w.sqlite", diverge=False, window=(0.1, 0.5))
    assert collect(store).prune_windows == [(0.1, 0.5)]
    page = build_report(store, tmp_path / "out", n_boot=0, show_progress=False).html.read_text()
    assert "from 10% to 50% of training" in page and "25% to 75%" not in page
    assert "&delta; = 10<sup>&minus;3</sup>" in page
    assert (
        "Calibration of the prediction intervals: could not be measured on this sweep (no bootstrap"
        in page
    )


def test_a_store_without_recorded_windows_uses_the_run_defaults(report):
    assert "from 25% to 75% of training" in report.html.read_text()


def test_size_ticks_name_the_sizes_asked_for():
    """Measured N land slightly off the target and differ per sparsity; the
    loss-vs-N ticks name one round size per group (not 49.9k beside 50k)."""
    from sparsescale.report.figures import nominal_sizes

    measured = [49_937, 50_112, 49_890, 99_810, 100_240, 12_480, 12_530, 200_704]
    assert nominal_sizes(measured) == [12_500.0, 50_000.0, 100_000.0, 200_000.0]
    assert nominal_sizes([25_000, 30_000]) == [25_000.0, 30_000.0]


def test_determination_and_equivalent_dense_factor():
    """A quantity is 'determined' when its 95% interval is no wider than its
    median and the fit did not stop at a bound; the equivalent dense size is
    f(S)^(-1/bN) (closed form for cS = 0: (1 - S)^(-bS/bN))."""
    from sparsescale.laws.law import Law
    from sparsescale.report.determined import determination, equivalent_dense_factors

    intervals = {
        "bN": (0.2, 0.3, 0.45),
        "bS": (0.01, 0.2, 2.5),
        "cS": (0.0, 0.1, 0.12),
        "equivalent dense size at S=0.75": (1.7, 2.16, 2.76),
    }
    good, bad = determination(intervals, at_bound=["cS"])
    assert good == ["bN", "equivalent dense size at S=0.75"] and bad == ["bS", "cS"]
    law = Law(
        "sparse", {"aS": 5.0, "bS": 0.2, "cS": 0.0, "bN": 0.4, "aD": 1e5, "bD": 0.5, "c": 1.0}
    )
    factors = equivalent_dense_factors([0.0, 0.5, 0.75, 0.75])
    assert list(factors) == ["equivalent dense size at S=0.5", "equivalent dense size at S=0.75"]
    assert abs(factors["equivalent dense size at S=0.75"](law) - 4 ** (0.2 / 0.4)) < 1e-12
    # the dense model that size has the sparse model's N-term
    x = factors["equivalent dense size at S=0.5"](law)
    assert abs(law.predict(0.5, 1e5, 1e6) - law.predict(0.0, x * 1e5, 1e6)) < 1e-12


def test_law_json_carries_the_uncertainty_and_predicts_the_fitted_law(report):
    """The report's law.json is the fitted law with its calibrated uncertainty,
    and `sparsescale predict --law` gives the fitted law's numbers from it."""
    import json

    from sparsescale.laws.presets import load_law

    law = load_law(report.out_dir / "law.json")
    assert law.uncertainty is not None and law.uncertainty.draws.shape == (30, 7)
    assert law.coefficients == pytest.approx(report.coefficients, rel=1e-12)
    S, N, D = 0.5, 1e5, 4e5
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "sparsescale",
            "predict",
            "--law",
            str(report.out_dir / "law.json"),
            "--sparsity",
            str(S),
            "--params",
            str(N),
            "--data",
            str(D),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    pred = json.loads(cli.stdout)["predictions"][0]
    assert pred["loss"] == pytest.approx(
        toy_loss(S, N, D), rel=1e-3
    )  # the fitted law recovers the truth
    assert pred["loss"] == pytest.approx(float(law.predict(S, N, D)), rel=1e-12)
    assert pred["low"] <= pred["loss"] <= pred["high"]


def test_page_shows_the_calibration_the_rolling_holdouts_measured(report):
    cov = report.calibration["coverage"]["0.95"]
    page = report.html.read_text()
    n = len(report.calibration["folds"])
    assert (
        f"on {n} rolling holdout{'s' if n != 1 else ''} (each" in page
        and f"covered <b>{cov['covered']:.0%}</b> of {cov['n_points']} held-out runs" in page
    )
    rec = report.recommendations[0]
    lo, hi = rec["interval"]["sparsity"]
    assert lo <= rec["sparsity"] <= hi and f"lies between {lo:.2f} and {hi:.2f} (95%)" in page


def test_comparison_with_the_average_parameter_law(report):
    """The runs come from the sparse law, so the comparison favours it; the laws'
    S_opt recommendations differ, so the page shows both maps side by side."""
    from sparsescale.laws.compare import compare_forms
    from sparsescale.laws.planning import optimal_sparsity

    cmp = report.comparison
    assert [sc["form"] for sc in cmp["scores"]] == ["sparse", "avgparam"]
    assert cmp["favoured"] == "sparse" and cmp["strength"] == "very strong"
    page = report.html.read_text()
    assert (
        "<h2>Which law?</h2>" in page
        and "the average-parameter law" in page
        and html.escape(cmp["verdict"]) in page
    )
    for sc in cmp["scores"]:
        assert f"{sc['aicc']:.1f}" in page
    # the average-parameter S_opt is that law's own plan at the same budget
    pts = collect(report.out_dir.parent / "toy.sqlite")
    avg = (
        compare_forms(
            Points(pts.sparsity, pts.n_nonzero, pts.data, pts.loss), FitOptions(delta=1e-3, seed=0)
        )
        .scores[1]
        .law
    )
    rec = report.recommendations[0]
    assert cmp["sopt"]["avgparam"][0] == pytest.approx(
        optimal_sparsity(avg, rec["n_nonzero"], rec["compute_flops"]).sparsity, abs=1e-6
    )
    assert cmp["disagree"] and cmp["max_sopt_gap"] > 0.05
    assert (
        "sopt_contours_avgparam" in report.figures
        and "The two laws disagree on S<sub>opt</sub>" in page
    )
    gaps = [abs(a - b) for a, b in zip(cmp["sopt"]["sparse"], cmp["sopt"]["avgparam"])]
    i = int(np.argmax(gaps))  # the sentence quotes the budget where the plans differ most
    assert (
        f"the sparse law says S = {cmp['sopt']['sparse'][i]:.2f} and the average-parameter law "
        f"S = {cmp['sopt']['avgparam'][i]:.2f}"
    ) in page


def test_on_noisy_runs_of_a_known_law_the_intervals_cover_the_truth(tmp_path):
    """Runs from toy_loss with 2% noise: the recommendation's calibrated 95%
    intervals contain the true law's S_opt and its loss at the recommended point."""
    from sparsescale.laws.law import Law
    from sparsescale.laws.planning import optimal_sparsity

    store = make_store(tmp_path / "noisy.sqlite", diverge=False, noise=0.02)
    s = build_report(store, tmp_path / "out", n_boot=40, seed=0, show_progress=False)
    truth = Law("sparse", dict(TRUE))
    rec = s.recommendations[0]
    iv = rec["interval"]
    true_opt = optimal_sparsity(truth, rec["n_nonzero"], rec["compute_flops"])
    assert iv["sparsity"][0] <= true_opt.sparsity <= iv["sparsity"][1], (
        iv["sparsity"],
        true_opt.sparsity,
    )
    assert (
        iv["loss"][0] <= toy_loss(rec["sparsity"], rec["n_nonzero"], rec["data"]) <= iv["loss"][1]
    )
    assert iv["loss"][1] - iv["loss"][0] > 1e-3  # noisy runs: a real interval, not a point


def test_regime_check_passes_the_law_and_flags_a_step(report, tmp_path):
    """Runs of the law itself fall with D like a power law: no warning, every judged series
    'power law' (the one that lost its diverged run is too short to judge). Runs that
    leave a plateau between the two larger budgets are flagged, in the warnings and the page."""
    verdicts = [x["verdict"] for x in report.regime]
    assert (
        len(verdicts) == 16
        and verdicts.count("too short") == 1
        and set(verdicts) == {"power law", "too short"}
    )
    assert not any("power law" in w for w in report.warnings)
    assert "Does the loss fall with D like a power law?" in report.html.read_text()

    def stepped(
        S, N, D
    ):  # the law, minus 0.3 nats once the wider models (N/(1-S) >= 200k) pass 1M tokens
        # (1.5e5: the targets' N/(1-S) are 25k times powers of 2; the measured N is within 0.5%)
        return toy_loss(S, N, D) - (0.3 if D > 1e6 and N / (1 - S) >= 1.5e5 else 0.0)

    store = make_store(tmp_path / "step.sqlite", diverge=False, loss_fn=stepped)
    out = build_report(store, tmp_path / "out", n_boot=0, seed=0, show_progress=False)
    flagged = {
        (x["sparsity"], round(x["n_nonzero"], -3)) for x in out.regime if x["verdict"] == "step"
    }
    assert flagged == {
        (s, n)
        for s in (0.0, 0.5, 0.75, 0.875)
        for n in (25e3, 50e3, 100e3, 200e3)
        if n / (1 - s) >= 2e5
    }
    assert any(
        w.startswith(f"{len(flagged)} of 16 (S, N) series do not fall with D like a power law (")
        for w in out.warnings
    )
    assert out.html.read_text().count("<tr class='flag'>") == len(flagged)
