# The two commands of the README:
#   make site   set up venv + sandbox (built on first use) and run site.yml on inventories/local
#   make test   every quality gate and test tier (what .ci/run runs)
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv/bin
# Karpenter's AWS provider v1.15 needs Go >= 1.26.11: the go command fetches this toolchain from the module proxy.
export GOTOOLCHAIN := go1.27.3

help:
	@echo "make site | make test | make sandbox-up | make sandbox-down | make lint | make unit | make integration | make bench"

bootstrap:
	@scripts/bootstrap.sh

sandbox-up: bootstrap
	@$(VENV)/python sandbox/sandbox.py up

sandbox-down:
	@$(VENV)/python sandbox/sandbox.py down

site: sandbox-up
	@source .sandbox/env.sh && $(VENV)/ansible-playbook site.yml -i inventories/local

test: bootstrap
	@scripts/test.sh all

lint: bootstrap
	@scripts/test.sh lint

unit: bootstrap
	@scripts/test.sh unit

integration: bootstrap
	@scripts/test.sh integration

ee: bootstrap  ## execution-environment build context for AWX (build it with ansible-builder build where a container engine runs)
	@rm -rf build/ee && $(VENV)/ansible-galaxy collection build --output-path build/ee && $(VENV)/ansible-builder create -f execution-environment.yml -c build/ee/context

bench: sandbox-up
	@source .sandbox/env.sh && $(VENV)/python bench/run.py

.PHONY: ee help bootstrap sandbox-up sandbox-down site test lint unit integration bench
