# The verbs of Agora. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The virtualenv alone (tools/venv.sh), all the kind flow needs of Python.
PYTHON_STAMP := $(VENV)/.python
DEVSTACK := $(BIN)/python -m devstack

# The instances `make test` and `make bench` start and stop, beside any `make up` of the
# user's. All ports stay below 32768, where the kernel picks ephemeral ports.
# TEST_PORT_BASE / BENCH_PORT_BASE move them (two checkouts testing at once, say).
TEST_PORT_BASE ?= 28000
BENCH_PORT_BASE ?= 24000
# The test stack evaluates its rules every second, so alerts fire within its tests, and
# traces every request into devstack's receiver (tests/integration/test_tracing.py).
TEST_STACK := AGORA_RUN_DIR=.run/test AGORA_INGRESS_PORT=$(shell echo $$(($(TEST_PORT_BASE) + 80))) \
	AGORA_PORT_BASE=$(TEST_PORT_BASE) AGORA_EVALUATION_INTERVAL=1s AGORA_TRACING=1
BENCH_STACK := AGORA_RUN_DIR=.run/bench AGORA_INGRESS_PORT=$(shell echo $$(($(BENCH_PORT_BASE) + 80))) \
	AGORA_PORT_BASE=$(BENCH_PORT_BASE)
# checkov, pinned in tools/checkov-requirements.txt (its own virtualenv: its pins clash)
CHECKOV_VERSION := 3.3.30
# The kind cluster of `make deploy` (tools/cluster.sh, which reads its other settings
# from the environment: KIND_HTTPS_PORT, PROMETHEUS_PORT, ...); SERVICE for `make port-forward`.
# The kind flow needs Docker and kind, not `make setup` (docs/kubernetes.md).
export KIND_CLUSTER ?= agora
export KIND_HTTP_PORT ?= 8090

.PHONY: help setup up down status logs test lint unit chart image integration bench lock clean \
	deploy undeploy port-forward test-cluster canary canary-status promote rollback canary-analyze socialgraph

help: ## list the verbs
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

setup: $(STAMP) ## install Debian packages (as root) and the virtualenv

$(STAMP): pyproject.toml constraints.txt tools/setup.sh tools/venv.sh tools/lib.sh \
		tools/checkov-requirements.txt tools/install-k8s-tools.sh
	PYTHON=$(PYTHON) tools/setup.sh
	@touch $@ $(PYTHON_STAMP)

$(PYTHON_STAMP): pyproject.toml constraints.txt tools/venv.sh
	PYTHON=$(PYTHON) tools/venv.sh
	@touch $@

up: setup ## run the whole system on this machine (devstack) and print its URLs
	$(DEVSTACK) up

down: setup ## stop everything `make up` started
	$(DEVSTACK) down

status: setup ## what runs, and each replica's readiness
	$(DEVSTACK) status

logs: setup ## the last lines of every log; SERVICE=catalog for one, FOLLOW=1 to follow
	$(DEVSTACK) logs $(SERVICE) $(if $(FOLLOW),--follow)

# Canaries on the dev stack (docs/canary.md): SERVICE=catalog, ENV="FAULT_ERROR_RATE=0.2 ..."
# (the canary's env over stable's), VERSION=v2 (a name), WEIGHT=20 (%), AB=1 (an A/B test),
# REPLICAS=2, COOKIE=beta (a cookie whose always/never choose, like the header).
canary: setup ## start a canary: SERVICE= [VERSION=] [ENV="K=V ..."] [WEIGHT=] [AB=1]
	$(DEVSTACK) canary $(SERVICE) $(if $(VERSION),--version $(VERSION)) \
		$(foreach pair,$(ENV),--env $(pair)) $(if $(WEIGHT),--weight $(WEIGHT)) $(if $(AB),--ab) \
		$(if $(REPLICAS),--replicas $(REPLICAS)) $(if $(COOKIE),--cookie $(COOKIE))

canary-status: setup ## the canaries, their weights and replicas
	$(DEVSTACK) canary-status

promote: setup ## SERVICE's canary becomes stable
	$(DEVSTACK) promote $(SERVICE)

rollback: setup ## SERVICE's canary goes, stable takes every request
	$(DEVSTACK) rollback $(SERVICE)

canary-analyze: setup ## step SERVICE's canary weight, compare with stable, promote or roll back
	$(DEVSTACK) canary-analyze $(SERVICE) $(if $(STEPS),--steps $(STEPS)) \
		$(if $(STEP_SECONDS),--step-seconds $(STEP_SECONDS)) $(if $(INTERVAL),--interval $(INTERVAL)) \
		$(if $(MIN_REQUESTS),--min-requests $(MIN_REQUESTS))

test: lint unit chart image integration ## everything that can be verified without a cluster

lint: setup ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: setup ## unit tests (real PostgreSQL started on a free port), promtool's rule tests
	$(BIN)/pytest tests/unit

chart: setup ## the chart (lint, schemas, checkov, hadolint, objects) and the kind flow's scripts
	$(BIN)/pytest tests/chart tests/tools

image: setup ## build the image (debootstrap base unless BASE_IMAGE) and run every service in it
	$(BIN)/pytest tests/image

# One fresh devstack for every suite, in an order where none can break a later one: the
# README's examples first (they assume the demo data as `make up` leaves it), then the
# integration tests, the fault tests (they kill and restart processes, and wait for
# them), the browser tests (Playwright's loop runs until the session ends, so no test
# after them may call asyncio.run), and last the contract tests (schemathesis, in its own
# process, leaves random data behind).
INTEGRATION_SUITES := tests/readme tests/integration tests/fault tests/browser tests/contract

integration: setup ## README examples, integration, fault, browser and contract tests, one fresh devstack
	$(TEST_STACK) AGORA_VALUES_EXTRA=tests/integration/values.yaml $(DEVSTACK) run --fresh -- \
		$(BIN)/pytest $(INTEGRATION_SUITES)

bench: setup ## benchmarks through the ingress of a fresh devstack (BENCH=kit for one)
	$(BENCH_STACK) AGORA_VALUES_EXTRA=bench/values.yaml $(DEVSTACK) run --fresh -- $(BIN)/python -m bench $(BENCH)

socialgraph: setup ## load socfb-Reed98 through socialcompat into a running `make up` (AGORA_URL)
	$(BIN)/python -m bench.dsb_graph --url "$${AGORA_URL:-http://127.0.0.1:8080}"

deploy: ## kind cluster + image + ingress-nginx + chart + helm test, then the URLs
	tools/cluster.sh deploy

undeploy: ## delete the kind cluster of `make deploy`
	tools/cluster.sh undeploy

port-forward: ## Prometheus on 127.0.0.1:19090 (PROMETHEUS_PORT) and SERVICE (default catalog)
	tools/cluster.sh port-forward $(SERVICE)

test-cluster: $(PYTHON_STAMP) ## the integration tests through the kind cluster's ingress
	tools/cluster.sh test-cluster

lock: ## re-resolve constraints.txt from pyproject.toml (and checkov's pins)
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q --upgrade pip && .lock-venv/bin/pip install -q '.[dev,bench]'
	.lock-venv/bin/pip freeze --exclude agora > constraints.txt && rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install -q checkov==$(CHECKOV_VERSION)
	{ sed -n '/^#/p' tools/checkov-requirements.txt; .lock-venv/bin/pip freeze; } > .lock-checkov
	mv .lock-checkov tools/checkov-requirements.txt && rm -rf .lock-venv

clean: down ## remove the virtualenv and devstack state
	rm -rf $(VENV) .run
