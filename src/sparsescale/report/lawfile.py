"""law.json, the report's law file: the fitted law as `Law.save` writes it
(with its uncertainty: `sparsescale predict --law` reads it), plus the n:m
pattern laws when the sweep has them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sparsescale.atomic import write_text
from sparsescale.laws.jsonsafe import finite_json
from sparsescale.laws.law import Law
from sparsescale.laws.nm_patterns import SECTION


def write_law(path: Path, law: Law, section: dict[str, Any] | None) -> None:
    """law.json: the base law, plus the pattern laws (`section["laws"]`, a
    PatternLaws.to_dict(), under the key "pattern_laws") when the sweep has
    them; `sparsescale choose-pattern --patterns` reads them from the same file."""
    if section is None:
        law.save(path)
        return
    obj = finite_json({**law.to_dict(), SECTION: section["laws"]})[0]
    write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")
