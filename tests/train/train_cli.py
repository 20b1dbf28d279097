"""argv helper for the train tests, in a uniquely named module: every test
folder has a conftest.py, so `from conftest import ...` picks whichever one
was imported first."""

import sys


def cli(*args: str) -> list[str]:
    """argv for the installed `sparsescale` entry point of this interpreter."""
    return [sys.executable, "-c", "from sparsescale.cli import main; main()", *args]
