"""Calibration of the prediction intervals: how often the law's 95% intervals
covered runs it had not seen, on the rolling holdouts `laws.uncertainty.assess` ran (each
next size or training length predicted from the smaller ones)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sparsescale.laws.jsonsafe import finite_json
from sparsescale.report.render import esc


@dataclass
class Calibration:
    calibration: (
        dict[str, Any] | None
    )  # laws' Calibration.to_dict(); None when it could not be measured
    note: str = ""  # why there is none ("" when there is)


def compute(result, n_boot: int) -> Calibration:
    """The calibration assess measured (`result`: its AssessResult), or why there is none."""
    if result.calibration is not None:
        return Calibration(result.calibration.to_dict())
    if n_boot == 0:
        return Calibration(
            None, "no bootstrap was run (bootstrap 0), so the law carries no intervals to calibrate"
        )
    why = [w for w in result.warnings if w.startswith("intervals not calibrated")]
    return Calibration(
        None, why[0] if why else "the rolling holdouts could not be fitted on this sweep"
    )


def to_json(sec: Calibration) -> dict[str, Any]:
    return finite_json({"calibration": sec.calibration, "calibration_note": sec.note or None})[0]


def to_html(sec: Calibration) -> list[str]:
    cal = sec.calibration
    if not cal:
        return [
            f"<p>Calibration of the prediction intervals: could not be measured on this sweep "
            f"({esc(sec.note)}).</p>"
        ]
    cov = cal["coverage"]["0.95"]
    n = len(cal["folds"])
    text = (
        f"<p>Calibration: on {n} rolling holdout{'s' if n != 1 else ''} (each next size or "
        "training length "
        "predicted from the smaller ones), the 95% prediction intervals covered "
        f"<b>{cov['covered']:.0%}</b> of "
        f"{cov['n_points']} held-out runs"
    )
    cv = (cal.get("coverage_leave_one_fold_out") or {}).get("0.95")
    if cv:
        text += f" ({cv['covered']:.0%} when each fold's model error is estimated without it)"
    return [
        text + f"; the model error grows by {100 * cal['per_efold']:.2f}% per e-fold of "
        "extrapolation.</p>"
    ]


def to_text(sec: Calibration) -> list[str]:
    """One line when measured; nothing otherwise (the page says why)."""
    if not sec.calibration:
        return []
    cov = sec.calibration["coverage"]["0.95"]
    return [
        f"calibration: 95% prediction intervals covered {cov['covered']:.0%} of {cov['n_points']} "
        f"runs held out in {len(sec.calibration['folds'])} rolling holdout(s)"
    ]
