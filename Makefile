# The Makefile is the contract: every target installs what it needs first.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PROTOS  := $(wildcard protos/skiffpb/*.proto)
GEN     := skiffpb/resources_pb2.py skiffpb/api_pb2.py
DURATION ?= 600
SEED    ?= 1
SECONDS ?= 600

.PHONY: all install tools protos test unit lint bench demo up down chaos fuzz clean

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
	@# mypy-protobuf's plugins write the type stubs (.pyi) of the messages and of the gRPC stubs.
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=. --grpc_python_out=. \
		--plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy --mypy_out=. \
		--plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc --mypy_grpc_out=. $(PROTOS)
	touch skiffpb/__init__.py $(GEN)

install: $(STAMP) $(GEN)

# Every outside program that the tests, benchmarks, demo and chaos run, as program:Debian-package
# (kubectl comes with this kind of machine: the image installs the gcloud kubectl 1.32 dispatcher).
# tests/unit/test_tools_listed.py fails when a test, bench or chaos module calls a program not named here.
TOOLS := wrk:wrk haproxy:haproxy iptables:iptables ip:iproute2 curl:curl timeout:coreutils nice:coreutils kubectl:kubectl

# Installs the missing ones with one apt-get run; says nothing when none is missing.
tools:
	@missing=""; for t in $(TOOLS); do command -v "$${t%%:*}" >/dev/null 2>&1 || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null \
			|| { echo "could not install$$missing"; exit 1; }; fi

protos: $(GEN)

# The style guide's checks: ruff's lints, ruff's formatting, and mypy (configured in pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: install tools lint
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

unit: install
	$(BIN)/python -m pytest -q tests/unit tests/component

bench: install tools
	$(BIN)/python -m bench

up: install
	$(BIN)/skiff up

down: install
	$(BIN)/skiff down

demo: install tools
	$(BIN)/python -m orchestrator.demo

chaos: install tools
	$(BIN)/python -m chaos --duration $(DURATION) --seed $(SEED)

# Hostile input against real masters for SECONDS (make test runs a short version: tests/integration/test_fuzz.py).
fuzz: install
	$(BIN)/python -m tests.fuzz --seconds $(SECONDS) --seed $(SEED) --json fuzz-report.json

clean:
	rm -rf $(VENV) skiffpb .pytest_cache
