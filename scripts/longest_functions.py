"""List the longest functions in src/ (lines, name), longest first: the style
rule is at most 60 lines outside model forward()s.

    python scripts/longest_functions.py [--top 15] [--max 60]
"""

import argparse
import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def functions(root: Path = SRC):
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield (
                    node.end_lineno - node.lineno + 1,
                    f"{path.relative_to(root)}:{node.lineno} {node.name}",
                )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument(
        "--max", type=int, default=None, help="exit 1 if a non-forward function is longer"
    )
    args = ap.parse_args()
    found = sorted(functions(), reverse=True)
    for n, where in found[: args.top]:
        print(f"{n:4d}  {where}")
    if args.max is not None:
        over = [(n, w) for n, w in found if n > args.max and not w.endswith(" forward")]
        raise SystemExit(1 if over else 0)


if __name__ == "__main__":
    main()
