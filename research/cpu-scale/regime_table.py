"""laws.regime on stores (and the paper's sweeps): how many (S, N) series fall
with D like a power law, and each series' drops per doubling of D.

    .venv/bin/python research/cpu-scale/regime_table.py paper:t5 paper:vit runs/issue11/cpu-full.sqlite ...
"""

from __future__ import annotations

import collections
import json
import sys

from sparsescale.laws.paper import paper_points
from sparsescale.laws.regime import check_series, regime_warning
from sparsescale.report.build import collect


def main(sources: list[str]) -> None:
    out = {}
    for src in sources:
        if src.startswith("paper:"):
            points = paper_points(src)
        else:
            p = collect(src)
            points = (p.sparsity, p.n_nonzero, p.data, p.loss)
        series = check_series(*points)
        out[src] = {"verdicts": dict(collections.Counter(x.verdict for x in series)),
                    "warning": regime_warning(series),
                    "series": [{"S": x.sparsity, "N": x.n_nonzero, "verdict": x.verdict,
                                "drops": [round(v, 4) for v in x.drops]} for x in series]}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
