"""The last line of defence: an exception nobody expected is one line naming
the command and a log file holding the full traceback, exit status 1."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_helpers import one_line

BOOM = """
from sparsescale.cli import app, main
@app.command()
def boom() -> None:
    raise {exc}
main(["boom"])
"""


@pytest.mark.parametrize("exc", ["ZeroDivisionError('sabotage')", "EOFError('sabotage')"])
def test_unexpected_exception_is_one_line_with_a_log(exc):
    done = subprocess.run(
        [sys.executable, "-c", BOOM.format(exc=exc)], capture_output=True, text=True, timeout=60
    )
    line = one_line(done, 1, "sparsescale boom: internal error", "sabotage")
    log = Path(re.search(r"traceback is in (\S+)$", line).group(1))
    text = log.read_text()
    assert "Traceback" in text and exc.split("(")[0] in text
