# Zhishe: `make demo` to run it, `make test` to test it. Needs Python >= 3.11 and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?= -n 2

.PHONY: demo install dev test pytest lint format serve lock bench clean help

help:
	@echo "make demo   - install, initialise var/, load the demo community and serve http://$(HOST):$(PORT)"
	@echo "make test   - lint, then the whole test suite"
	@echo "make lint   - ruff check, ruff format --check, mypy"
	@echo "make bench  - run the benchmarks in bench/"

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is required") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python requirements.lock pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.lock requirements-nodeps.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.lock
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.dev-installed

demo: install
	$(BIN)/zhishe init
	$(BIN)/zhishe demo
	$(BIN)/zhishe serve --host $(HOST) --port $(PORT)

serve: install
	$(BIN)/zhishe serve --host $(HOST) --port $(PORT)

lint: dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: dev
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

pytest: dev
	$(BIN)/pytest -q $(PYTEST_ARGS)

test: lint pytest

bench: dev
	$(BIN)/python bench/import_bench.py
	$(BIN)/python bench/exchange_bench.py
	$(BIN)/python bench/anonymise_bench.py
	$(BIN)/python bench/opendata_query_bench.py
	$(BIN)/python bench/iot_http_bench.py
	$(BIN)/python bench/iot_mqtt_bench.py
	$(BIN)/python bench/forecast_bench.py
	$(BIN)/python bench/charging_bench.py
	$(BIN)/python bench/open311_bench.py
	$(BIN)/python bench/participation_sweep_bench.py
	$(BIN)/python bench/booking_bench.py
	$(BIN)/python bench/ledger_bench.py

lock: $(BIN)/python
	$(BIN)/python tools/lock.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
