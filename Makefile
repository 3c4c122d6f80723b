# The two commands a newcomer needs: `make demo` and `make test` (README.md).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup services demo lint test bench clean-services

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

services:
	scripts/services up

# The demo needs InfluxDB 1.8 only; the tests also build and start InfluxDB 2.7 (`services`).
demo: setup
	scripts/services up mosquitto kafka influxdb
	$(BIN)/hazardwatch demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: setup services lint
	$(BIN)/pytest -q

# Every benchmark and the Node-RED comparison → bench/results.json and docs/benchmarks.md.
bench: setup services
	bench/run_all

clean-services:
	scripts/services down
