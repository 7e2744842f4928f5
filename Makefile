# Two entry points (see README): `make report` and `make test`. Both set everything up first.
PY      ?= python3
VENV    ?= .venv
DATA    ?= $(if $(SIMCSE_DATA),$(SIMCSE_DATA),../shared/data)
MODEL   ?= all-MiniLM-L6-v2
OUTDIR  ?= out
BIN      = $(VENV)/bin

.PHONY: setup browser wordnet report test bench clean

# venv + CPU torch wheel first (any other torch request would pull a multi-GB CUDA build) + the package.
$(BIN)/simcse-analyze: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

setup: $(BIN)/simcse-analyze

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
	$(BIN)/lint-imports --no-logo --no-cache
	SIMCSE_DATA=$(DATA) $(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python -m pip install -q -e ".[bench]"
	SIMCSE_DATA=$(DATA) $(BIN)/python benchmarks/bench_cli_help.py
	SIMCSE_DATA=$(DATA) $(BIN)/python benchmarks/bench_encode.py --data-dir $(DATA)

clean:
	rm -rf $(VENV) .pytest_cache
