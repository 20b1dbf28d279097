import os
import sys
from pathlib import Path

HERE = Path(__file__).parent
# toy_runner must be importable by spawned workers and by subprocess coordinators.
sys.path.insert(0, str(HERE))
os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(
    os.pathsep
)
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
