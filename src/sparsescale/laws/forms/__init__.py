"""The law forms: one plug-in module per form, and the registry that names them.

A form is a `LawForm` record (forms/base.py). The built-in ones:

- ``sparse``: L(S, N, D) = (aS (1-S)^bS + cS) N^-bN + (aD / D)^bD + c
- ``dense`` (Chinchilla): L(N, D) = A N^-alpha + B D^-beta + E
- ``avgparam`` (Jin et al., ICLR 2025): the Chinchilla form on the mean number
  of non-zeros over training, N_avg = N / (1 - S) * (1 - f S)
- ``nm``: the sparse form with bN, aD, bD, c fixed from a base law and only
  aS, bS, cS free, for n:m and other sparsity structures.

A user's own form is one more entry: a module defining a LawForm, named as
"package.module:attribute" wherever a form name is taken (`get_form`), or
registered once with `register_form`. Adding a built-in form is one module
plus one line in FORMS below.
"""

from __future__ import annotations

from sparsescale.errors import SparsescaleError
from sparsescale.laws.forms.avgparam import AVGPARAM
from sparsescale.laws.forms.base import LawForm
from sparsescale.laws.forms.dense import DENSE
from sparsescale.laws.forms.nm import NM
from sparsescale.laws.forms.sparse import SPARSE
from sparsescale.plugins import load_attribute

FORMS: dict[str, LawForm] = {
    "sparse": SPARSE,
    "dense": DENSE,
    "nm": NM,
    "avgparam": AVGPARAM,
}

_HINT = "name your own as package.module:attribute"


def form_names() -> str:
    return ", ".join(FORMS)


def register_form(spec: LawForm) -> LawForm:
    """Add a form to the registry under its own name (replacing one of that name)."""
    if not isinstance(spec, LawForm):
        raise SparsescaleError(f"register_form: expected a LawForm, got a {type(spec).__name__}")
    FORMS[spec.name] = spec
    return spec


# A name with a colon is a user's form, imported on first use; it is cached in
# FORMS under the spelling used (so a law file that names it resolves without
# importing again) and under its own name (so `get_form("saturating")` works
# once it has been loaded).
def get_form(name: str) -> LawForm:
    """The form called `name`: a registered one, or "package.module:attribute"
    naming a LawForm, imported on first use and registered under both its
    module path and its own name. Raises SparsescaleError naming `name`."""
    if isinstance(name, LawForm):
        return name
    if name in FORMS:
        return FORMS[name]
    if not isinstance(name, str) or ":" not in name:
        raise SparsescaleError(
            f"unknown law form {name!r}; expected one of {form_names()} (or {_HINT})"
        )
    found = load_attribute(name, "form", LawForm, f"choose {form_names()}, or {_HINT}")
    FORMS[name] = found
    FORMS.setdefault(found.name, found)
    return found


__all__ = ["FORMS", "LawForm", "form_names", "get_form", "register_form"]
