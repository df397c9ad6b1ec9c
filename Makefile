# The Makefile is the contract: every target installs what it needs first.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PROTOS  := $(wildcard protos/skiffpb/*.proto)
GEN     := skiffpb/resources_pb2.py skiffpb/api_pb2.py
DURATION ?= 600
SEED    ?= 1

.PHONY: all install sysdeps protos test unit lint bench demo up down chaos clean

all: install

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq python3 python3-venv; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@# The generated package must exist before the editable install, or it is not importable.
	mkdir -p skiffpb && touch skiffpb/__init__.py
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

$(GEN): $(PROTOS) $(STAMP)
	mkdir -p skiffpb
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=. --pyi_out=. --grpc_python_out=. $(PROTOS)
	touch skiffpb/__init__.py $(GEN)

install: $(STAMP) $(GEN)

# System tools the tests use: iptables (chaos blackholes a master's links), iproute2 (network namespaces).
sysdeps:
	@if [ "$$(id -u)" = 0 ] && ! command -v iptables >/dev/null 2>&1; then \
		(apt-get update -qq && apt-get install -y -qq iptables iproute2) >/dev/null || echo "warning: could not install iptables"; fi

protos: $(GEN)

lint: install
	$(BIN)/ruff check .

test: install sysdeps lint
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

unit: install
	$(BIN)/python -m pytest -q tests/unit tests/component

bench: install
	$(BIN)/python -m bench

up: install
	$(BIN)/skiff up

down: install
	$(BIN)/skiff down

demo: install
	$(BIN)/python -m orchestrator.demo

chaos: install sysdeps
	$(BIN)/python -m chaos --duration $(DURATION) --seed $(SEED)

clean:
	rm -rf $(VENV) skiffpb .pytest_cache
