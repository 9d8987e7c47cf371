# The front door: every target works from a fresh clone with only python3 installed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Rewritten after a successful install; reinstalls only when pyproject.toml changes.
STAMP  := $(VENV)/.installed
NET    ?= net

.DEFAULT_GOAL := help
.PHONY: help install proto demo up down test lint bench clean

help:
	@echo "make install  create $(VENV) and install kizuna with its test extras"
	@echo "make proto    regenerate clients/kizuna/v1 from protos/kizuna/v1/*.proto"
	@echo "make demo     play the seed's scenario on three local nodes"
	@echo "make up       start a local network in the background ($(NET)/network.json)"
	@echo "make down     stop it"
	@echo "make test     run every test"
	@echo "make lint     byte-compile, pyflakes, and check generated code is fresh"
	@echo "make bench    measure latency, throughput, fallback, catch-up and footprint (bench/results/)"
	@echo "make clean    remove $(VENV), caches and build output"

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[test]'
	touch $@

proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -I protos --python_out=clients --grpc_python_out=clients --pyi_out=clients \
		--plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc --mypy_grpc_out=clients protos/kizuna/v1/*.proto

demo: $(STAMP)
	$(BIN)/python -m kizuna.demo

up: $(STAMP)
	$(BIN)/kizuna net up --dir $(NET)

down: $(STAMP)
	$(BIN)/kizuna net down --dir $(NET)

test: $(STAMP)
	$(BIN)/pytest -q tests

lint: $(STAMP)
	$(BIN)/python -m compileall -q services clients tests bench
	$(BIN)/python -m pyflakes services clients/kizuna/*.py tests bench
	$(BIN)/pytest -q tests/test_protos_fresh.py

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) build *.egg-info clients/*.egg-info .pytest_cache
	find . -name __pycache__ -type d -not -path './.git/*' -prune -exec rm -rf {} +
