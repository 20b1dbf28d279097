"""Loading a user's plug-in named as "package.module:attribute".

Model families and law forms are plain registries of small dataclasses; a
user's own entry is named by where it lives and imported on first use. This is
the one loader both registries use, so the spelling and the errors agree.
"""

from __future__ import annotations

import importlib
from typing import Any

from sparsescale.errors import SparsescaleError


def load_attribute(name: str, what: str, kind: type, choices: str) -> Any:
    """Import "package.module:attribute" and return the attribute, which must be
    a `kind`. Errors name `what` (family, form) and `name`; `choices` says what
    else the user could have written."""
    module, _, attr = name.partition(":")
    if not all(part.isidentifier() for part in module.split(".")) or not attr.isidentifier():
        raise SparsescaleError(f"{what} {name!r}: expected package.module:attribute ({choices})")
    try:
        found = getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        raise SparsescaleError(
            f"{what} {name!r}: cannot import module {module!r} ({exc})"
        ) from None
    except AttributeError:
        raise SparsescaleError(
            f"{what} {name!r}: module {module!r} has no attribute {attr!r}"
        ) from None
    if not isinstance(found, kind):
        raise SparsescaleError(
            f"{what} {name!r}: {attr} is a {type(found).__name__}, not a sparsescale "
            f"{kind.__name__}"
        )
    return found
