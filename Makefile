# The two set-up commands of the README: `make quickstart` and `make test`.
# Both create .venv and install the pinned stack first (tools/install.sh).
VENV ?= .venv
STAMP := $(VENV)/.recsearch-installed
BIN := $(VENV)/bin

.PHONY: install quickstart test lint unit
install: $(STAMP)

$(STAMP): setup.py requirements.txt requirements-dev.txt tools/install.sh
	bash tools/install.sh --venv $(VENV)
	touch $(STAMP)

quickstart: $(STAMP)
	$(BIN)/recsearch compare --preset tiny

lint: $(STAMP)
	$(BIN)/ruff check recsearch tests tools launchers
	$(BIN)/ruff format --check recsearch tests tools launchers
	$(BIN)/mypy recsearch

unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration"

data/movielens100k/MovieLens100k_data.parquet.brotli: tools/fetch_movielens.sh $(STAMP)
	PYTHON=$(BIN)/python bash tools/fetch_movielens.sh

test: lint $(STAMP) data/movielens100k/MovieLens100k_data.parquet.brotli
	$(BIN)/python -m pytest -q
