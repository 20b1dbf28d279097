"""report on a store with n:m runs of known laws: the pattern section, its
refits, the measured gaps and the pattern laws in law.json."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sweep"))
from toy_runner import toy_loss  # noqa: E402

from sparsescale.laws.nm_patterns import load_pattern_laws  # noqa: E402
from sparsescale.laws.presets import load_law  # noqa: E402
from sparsescale.report.build import build_report  # noqa: E402
from sparsescale.sweep.spec import expand, spec_from_dict  # noqa: E402
from sparsescale.sweep.store import Store  # noqa: E402

A = 3 * 1e4**0.3  # toy_loss's aS + cS (the base the pattern laws keep)
FAMILY = {"aS": 1.5 * 1e4**0.3, "bS": 1.2}  # the n:4 family: aS, bS; cS = A - aS


T_COST = 0.01  # 2:4T runs: the n:4 family's loss plus this


def family_loss(S, N, D):
    k = FAMILY["aS"] * (1 - S) ** FAMILY["bS"] + A - FAMILY["aS"]
    return k * N**-0.3 + (2e4 / D) ** 0.4 + 0.5


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nm")
    spec = spec_from_dict(
        {
            "family": "gpt",
            "grid": {
                "sparsity": [0.0, 0.5, 0.75],
                "n_nonzero": ["25k", "50k", "100k", "200k"],
                "tokens": ["100k", "400k", "1.6M"],
                "patterns": ["unstructured", "2:4", "1:4", "2:4T"],
            },
        }
    )
    path = tmp / "nm.sqlite"
    with Store(path) as store:
        runs = expand(spec)
        store.add_sweep("nm", spec.model_dump(mode="json"), runs, tmp / "runs")
        for run in runs:
            c = run.config
            S, D = c["sparsity"], c["tokens"]
            # the measured N: within 0.5% of the target, the same for a pattern run and its twin
            N = round(c["params"] * (1 + 0.005 * np.sin(c["params"] / 1e4 + 3 * S + D / 1e5)))
            loss = family_loss(S, N, D) if c["pattern"] else toy_loss(S, N, D)
            if c["pattern"] == "2:4T":
                loss += T_COST
            # one 2:4 run trained another shape than its unstructured twin (as the sizer may at
            # small N)
            odd = c["pattern"] == "2:4" and c["params"] == 25_000 and D == 100_000
            store.mark_running(run.config_hash)
            store.record_result(
                run.config_hash,
                {
                    "status": "finished",
                    "sparsity": S,
                    "pattern": c["pattern"],
                    "n_nonzero": N,
                    "tokens": D,
                    "final_loss": loss,
                    "wall_s": 1.0,
                    "model_config": {"depth": 2, "width": 16 if odd else 32, "mlp_hidden": 64},
                    "curve": [{"step": 1, "tokens": D, "val_loss": loss}],
                },
            )
    return build_report(path, tmp / "out", n_boot=30, seed=0, show_progress=False)


def test_pattern_section_recovers_the_family_and_the_gaps(report):
    sec = report.patterns
    pats = sec["laws"]["patterns"]
    assert set(pats) == {"2:4", "1:4", "2:4T"} and pats["2:4"]["n_runs"] == 12
    for p, s in (("2:4", 0.5), ("1:4", 0.75)):
        q = pats[p]["quantities"]
        # measured relative errors on these noise-free runs: 1.1e-15 (aS), 2.2e-16 (bS, k_ratio)
        assert q["aS"]["value"] == pytest.approx(FAMILY["aS"], rel=1e-6)
        assert q["bS"]["value"] == pytest.approx(FAMILY["bS"], rel=1e-6)
        k_true = FAMILY["aS"] * (1 - s) ** FAMILY["bS"] + A - FAMILY["aS"]
        k_unstr = 2 * 1e4**0.3 * (1 - s) ** 0.7 + 1e4**0.3
        assert q["k_ratio"]["value"] == pytest.approx(k_true / k_unstr, rel=1e-6)
        assert q["k_ratio"]["low"] <= q["k_ratio"]["median"] <= q["k_ratio"]["high"]
        gaps = sec["measured_gaps"][p]
        assert len(gaps) == 12
        for g in gaps:  # no law: the two recorded losses
            assert g["gap"] == pytest.approx(
                family_loss(s, g["n_nonzero"], g["data"]) - toy_loss(s, g["n_nonzero"], g["data"]),
                rel=1e-9,
                abs=1e-12,
            )
    odd = [g for g in sec["measured_gaps"]["2:4"] if g["same_shape"] is False]
    assert [(round(g["n_nonzero"], -3), g["data"]) for g in odd] == [(25_000, 100_000)]
    assert all(g["same_shape"] for g in sec["measured_gaps"]["1:4"])


def test_page_json_and_law_file_carry_the_patterns(report):
    page = report.html.read_text()
    assert (
        "<h2>n:m patterns</h2>" in page and "(11 of 12 pairs)" in page and "another shape" in page
    )
    assert (report.out_dir / "patterns_loss_vs_n.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((report.out_dir / "summary.json").read_text())
    assert summary["patterns"]["figure"] == "patterns_loss_vs_n.png"
    assert set(summary["patterns"]["determined"]["2:4"]) == {
        "determined",
        "undetermined",
        "assessed",
    }
    law_path = report.out_dir / "law.json"
    base = load_law(law_path)  # still a plain law file for `predict --law`
    laws = load_pattern_laws(json.loads(law_path.read_text()), base, str(law_path))
    # measured relative error 2.2e-16
    assert laws["1:4"].predict(0.75, 5e4, 4e5) == pytest.approx(
        family_loss(0.75, 5e4, 4e5), rel=1e-6
    )
    assert np.asarray(laws["2:4"].uncertainty.draws).shape[0] >= 20


def test_a_transposable_pattern_is_refitted_as_its_own_family(report):
    """2:4T sits at 2:4's S and m but is fitted apart (family n:4T): the n:4
    family's aS, bS above are 2:4's and 1:4's alone, and 2:4T's measured gaps
    are 2:4's plus its extra cost."""
    sec = report.patterns
    t, plain = sec["laws"]["patterns"]["2:4T"], sec["laws"]["patterns"]["2:4"]
    assert (
        t["family"] == "n:4T"
        and plain["family"] == "n:4"
        and t["sparsity"] == 0.5
        and t["n_runs"] == 12
    )
    assert set(t["undetermined"]) == {"aS", "bS", "cS"}  # one sparsity: only its k
    assert t["quantities"]["k"]["value"] > plain["quantities"]["k"]["value"]
    for g, h in zip(sec["measured_gaps"]["2:4T"], sec["measured_gaps"]["2:4"]):
        assert g["gap"] == pytest.approx(h["gap"] + T_COST, rel=1e-9, abs=1e-12)
    laws = load_pattern_laws(
        json.loads((report.out_dir / "law.json").read_text()),
        load_law(report.out_dir / "law.json"),
        "law.json",
    )
    assert set(laws) == {"2:4", "1:4", "2:4T"}
    assert ">2:4T<" in report.html.read_text()
