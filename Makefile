# Two commands for a fresh machine:  `make demo`  and  `make test`.
# Each one sets up what it needs first (a venv with the pinned CPU torch, the
# package, and the offline data sets from Debian where apt is available).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.sparsescale-installed

.PHONY: setup demo test lint wheel-check bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup-data.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# Pinned first: an unpinned torch pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,ray,bpe,hf,storage]'
	# An extra that pulled another torch would replace the pinned CPU build.
	$(PY) -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	bash scripts/setup-data.sh
	touch $(STAMP)

demo: setup
	$(VENV)/bin/sparsescale demo

# The lint and the installed-wheel check run first: both take seconds to a few
# minutes, and a failure there is cheaper to see than one at the end of pytest.
test: setup lint wheel-check
	RAY_USAGE_STATS_ENABLED=0 $(PY) -m pytest -q -n 2 --dist loadgroup

# pyflakes, import order and the 100-column line length (pyproject.toml [tool.ruff]).
lint: setup
	$(VENV)/bin/ruff check src tests benchmarks scripts

# Build the sdist and wheel, install the wheel in a fresh venv without torch and
# run `fit paper:t5` and `predict --law t5-c4` from it (scripts/wheel-check.sh).
wheel-check: setup
	bash scripts/wheel-check.sh $(PY)

bench: setup
	for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
