"""The average-parameter law (Jin et al., ICLR 2025, arXiv 2501.12486): the
Chinchilla form on the AVERAGE number of non-zero parameters over training,

    L = A N_avg^-alpha + B D^-beta + E,   N_avg = N / (1 - S) * (1 - f S).

N / (1 - S) is the dense size of the pruned layers, and 1 - f S the schedule's
mean density, f its mean sparsity as a fraction of the final S (0.625 for the
cubic 25%-75% ramp; laws.schedule derives it). The law's file keeps f as
`mean_sparsity_fraction`. For the fitter it IS the dense problem, on N_avg.
"""

from __future__ import annotations

import numpy as np

from sparsescale.laws.forms import dense
from sparsescale.laws.forms.base import LawForm, Prepared
from sparsescale.laws.schedule import check_mean_sparsity_fraction, n_avg


def density_ratio(S, f):
    """g = N_avg / N = (1 - f S) / (1 - S): the mean over training of the dense
    size times density, per final non-zero."""
    return (1.0 - f * S) / (1.0 - S)


def predict(k, S, N, D, f):
    return k["A"] * n_avg(S, N, f) ** -k["alpha"] + k["B"] * D ** -k["beta"] + k["E"]


def sparsity_factor(k, S, f):
    """F(S) = (N_avg / N)^-alpha = g^-alpha: the N-term of N_avg over that of N."""
    return density_ratio(S, f) ** -k["alpha"]


def sparsity_factor_slope(k, S, f):
    # -dF/dS = alpha g^-alpha d(log g)/dS, with d(log g)/dS = 1/(1-S) - f/(1-fS)
    return k["alpha"] * density_ratio(S, f) ** -k["alpha"] * (1.0 / (1.0 - S) - f / (1.0 - f * S))


def prepare(S, N, D, base, f) -> Prepared:
    """The dense problem on N_avg: the basis sees N_avg where the dense form sees N."""
    f = check_mean_sparsity_fraction(f)
    return Prepared(S, n_avg(S, N, f), D, np.zeros_like(S))


AVGPARAM = LawForm(
    name="avgparam",
    title="the average-parameter law",
    coefficients=dense.NAMES,
    free=dense.NAMES,
    amplitudes=("A", "B", "E"),
    exponents=("alpha", "beta"),
    exponent_bounds=((1e-3, 2.0), (1e-3, 3.0)),
    ranges=dense.RANGES,
    formula="L = A*N_avg**(-alpha) + B*D**(-beta) + E,  N_avg = N/(1-S)*(1-f*S)  (f: the "
    "schedule's mean sparsity / S)",
    predict=predict,
    dense_view=dense.dense_view,
    basis=dense.basis,
    exponent_jacobian=dense.exponent_jacobian,
    to_coefficients=dense.to_coefficients,
    from_coefficients=dense.from_coefficients,
    sparsity_factor=sparsity_factor,
    sparsity_factor_slope=sparsity_factor_slope,
    prepare=prepare,
    needs_schedule=True,
)
