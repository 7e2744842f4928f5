# Two entry points (see README): `make report` and `make test`. Both set everything up first.
PY      ?= python3
VENV    ?= .venv
DATA    ?= $(if $(SIMCSE_DATA),$(SIMCSE_DATA),../shared/data)
MODEL   ?= all-MiniLM-L6-v2
OUTDIR  ?= out
BIN      = $(VENV)/bin

.PHONY: setup lock browser wordnet report test test-newest test-oldest run-tests bench clean

# The tested set of versions (README "Dependencies"): requirements/dev.lock (what `make setup`, `make report`,
# `make test` and .ci/run install) and requirements/bench.lock (`make bench`), both made by `make lock` with uv
# for CPython 3.11 on Linux x86-64, with every file's SHA-256. torch is the CPU build (requirements/torch-cpu.txt).
LOCKS    = requirements/dev.lock requirements/bench.lock
UV_VERSION ?= 0.13.9
UV       = .venv-tools/bin/uv
UV_COMPILE = $(UV) pip compile pyproject.toml --quiet --generate-hashes --python-version 3.11 \
             --python-platform x86_64-manylinux_2_28 --find-links /opt/wheels -c requirements/torch-cpu.txt \
             --no-header --custom-compile-command "make lock"
UV_RESOLVE = $(UV) pip compile pyproject.toml --quiet --extra dev --no-header --python .venv-oldest/bin/python

# venv from the lock (hash-checked, nothing resolved at install time), then the package itself (no deps).
$(BIN)/simcse-analyze: pyproject.toml requirements/dev.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r requirements/dev.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $@

setup: $(BIN)/simcse-analyze

# Refresh the lock files: the newest versions the ranges in pyproject.toml allow, today (then run `make test`).
$(UV):
	$(PY) -m venv .venv-tools
	.venv-tools/bin/python -m pip install -q "uv==$(UV_VERSION)"

lock: $(UV)
	$(UV_COMPILE) --extra dev -o requirements/dev.lock
	$(UV_COMPILE) --extra dev --extra bench -o requirements/bench.lock

# Debian's Chromium for the report's browser test (needs root or sudo; skipped when already there).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# Debian's WordNet 3.0 database (/usr/share/wordnet) for the synonym-replacement tests (same rules as above).
wordnet:
	@test -f /usr/share/wordnet/index.noun || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wordnet-base >/dev/null; }

# The main job: STS table of the default checkpoint now, and its full HTML report.
report: setup
	$(BIN)/simcse-analyze eval $(MODEL) --data-dir $(DATA) --json $(OUTDIR)/$(MODEL).sts.json
	$(BIN)/simcse-analyze report $(MODEL) --data-dir $(DATA) --out $(OUTDIR)/$(MODEL).html

test: setup browser wordnet
	$(MAKE) --no-print-directory run-tests

# The suite against other versions than the lock's, each in its own venv (installed with uv, which resolves afresh;
# the torch of each is a PyPI build, the CUDA one on Linux: several GB, downloaded once per venv):
#   test-newest: the newest release of every dependency that the ranges in pyproject.toml allow, today;
#   test-oldest: the lowest versions those ranges allow for our direct dependencies (uv --resolution lowest-direct).
# Each prints the versions it ran; the README's "Dependencies" section records the last results.
test-newest: $(UV) browser wordnet
	test -x .venv-newest/bin/python || $(PY) -m venv .venv-newest
	$(UV) pip install -q --python .venv-newest/bin/python --upgrade -e ".[dev]"
	$(MAKE) --no-print-directory VENV=.venv-newest run-tests

test-oldest: $(UV) browser wordnet
	test -x .venv-oldest/bin/python || $(PY) -m venv .venv-oldest
	$(UV_RESOLVE) --resolution lowest-direct -o .venv-oldest/requirements.txt
	$(UV) pip sync -q --python .venv-oldest/bin/python .venv-oldest/requirements.txt
	$(UV) pip install -q --python .venv-oldest/bin/python --no-deps -e .
	$(MAKE) --no-print-directory VENV=.venv-oldest run-tests

# (the versions that matter most, then the suite; used by test-newest and test-oldest)
run-tests:
	@$(BIN)/python -c "import importlib.metadata as m; print('versions:', ', '.join(f'{p} {m.version(p)}' for p in ('torch', 'transformers', 'tokenizers', 'numpy', 'scipy', 'scikit-learn', 'umap-learn', 'plotly', 'typer', 'accelerate', 'safetensors', 'normflows', 'sentence-transformers')))"
	$(BIN)/lint-imports --no-logo --no-cache
	SIMCSE_DATA=$(DATA) $(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r requirements/bench.lock
	SIMCSE_DATA=$(DATA) $(BIN)/python benchmarks/bench_cli_help.py
	SIMCSE_DATA=$(DATA) $(BIN)/python benchmarks/bench_encode.py --data-dir $(DATA)

clean:
	rm -rf $(VENV) .venv-newest .venv-oldest .venv-tools .pytest_cache
