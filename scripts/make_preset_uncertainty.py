"""Make the intervals the presets t5-c4 and vit-jft carry, from the paper's data.

    python scripts/make_preset_uncertainty.py
    # writes src/sparsescale/laws/paperdata/preset-uncertainty.json

For each preset (Table 1 of arXiv 2309.08520) and its sweep (shipped in
sparsescale/laws/paperdata):
- coefficient draws: B = 200 bootstrap resamples of the runs (seed 0), each
  refined from the published coefficients only, so that the draws describe the
  published optimum's basin (on T5 the published law is a local optimum; a
  draw from another basin would describe a different law);
- model error: floor = the published law's RMS log residual on the sweep;
  per_efold = the rate calibrated on the sweep's rolling holdouts
  (sparsescale.laws.uncertainty.calibration.calibrate, 100 draws per fold, seed 0), whose
  coverage table is stored with it.
Deterministic: the same numpy/scipy give the same file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sparsescale.atomic import write_text
from sparsescale.laws.fit import fit_law
from sparsescale.laws.forms import get_form
from sparsescale.laws.paper import PAPER_SWEEPS, paper_points
from sparsescale.laws.points import FitOptions, Points
from sparsescale.laws.presets import PRESETS
from sparsescale.laws.uncertainty.bootstrap import bootstrap
from sparsescale.laws.uncertainty.calibration import calibrate, residual_floor
from sparsescale.laws.uncertainty.intervals import FitRange, ModelError, Uncertainty

N_BOOT = 200
OUT = (
    Path(__file__).resolve().parents[1]
    / "src"
    / "sparsescale"
    / "laws"
    / "paperdata"
    / "preset-uncertainty.json"
)


def preset_uncertainty(sweep) -> dict:
    S, N, D, y = paper_points(sweep.name)
    law = PRESETS[sweep.preset]
    settings = {"space": sweep.space, "delta": sweep.delta}
    reference = fit_law(Points(S, N, D, y), FitOptions(seed=0, **settings))
    boot = bootstrap(
        Points(S, N, D, y),
        FitOptions(seed=0, **settings),
        n_boot=N_BOOT,
        reference=reference,
        starts=[dict(law.coefficients)],
    )
    draws = np.column_stack([boot.samples[k] for k in get_form("sparse").coefficients])
    cal = calibrate(Points(S, N, D, y), FitOptions(seed=0, **settings), n_boot=100)
    unc = Uncertainty(
        form="sparse",
        draws=draws,
        fit_range=FitRange.of(S, N, D),
        model_error=ModelError(residual_floor(law, S, N, D, y), cal.per_efold),
        calibration=cal.to_dict(),
        source=(
            f"scripts/make_preset_uncertainty.py: {N_BOOT} bootstrap draws of the paper's "
            f"{sweep.name} sweep "
            f"({len(y)} runs) refined from the Table 1 coefficients; model error calibrated on "
            f"{len(cal.folds)} rolling holdouts"
        ),
    )
    return unc.to_dict()


def main() -> None:
    table = {sweep.preset: preset_uncertainty(sweep) for sweep in PAPER_SWEEPS.values()}
    write_text(OUT, json.dumps(table, indent=1) + "\n")
    for name, obj in table.items():
        print(name, "per_efold", obj["model_error"], "coverage", obj["calibration"]["coverage"])
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
