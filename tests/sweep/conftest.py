import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
# toy_runner must be importable by spawned workers and by subprocess coordinators.
sys.path.insert(0, str(HERE))
os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def train_available() -> bool:
    try:
        import sparsescale.train.run  # noqa: F401
        import sparsescale.train.config  # noqa: F401
    except ImportError:
        return False
    return True


needs_train = pytest.mark.skipif(not train_available(), reason="sparsescale.train (issue 4) is not in this checkout")
