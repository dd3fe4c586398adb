# Parcours: `make run` starts the whole stack, `make test` runs the suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SERVICES := ingest router channels tracker dunning portal
PACKAGES := libs/contracts libs/runtime libs/devstack $(addprefix services/,$(SERVICES))
TAG ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
CHECKOV := .parcours/tools/checkov/.requirements

.PHONY: install tools run test bench chaos contracts check-contracts k8s images clean

$(VENV)/.installed: constraints.txt requirements-dev.txt $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt $(foreach p,$(PACKAGES),-e $(p)) -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

# checkov (policy scan of the manifests) lives in its own venv: its pins clash with ours.
$(CHECKOV): deploy/tools/checkov-requirements.txt
	PYTHON=$(PYTHON) deploy/tools/install-checkov.sh

tools: $(CHECKOV)

run: install
	$(PY) -m parcours_devstack.stack

# Three workers: most tests wait on a broker, a database or a process more than they compute.
test: install tools
	$(PY) -m pytest -q -n 3

# Figures and ratios against a bare pipeline measured in the same run; ARGS="--invoices 2000" for a quick look.
bench: install
	$(PY) -m bench.run $(ARGS)

# kill -9 of random services under a steady load, then exactly-once delivery checked (a short run is in make test).
chaos: install
	CHAOS_INVOICES=$${CHAOS_INVOICES:-20000} CHAOS_KILLS=$${CHAOS_KILLS:-10} CHAOS_RATE=$${CHAOS_RATE:-40} \
		CHAOS_STALL_SECONDS=$${CHAOS_STALL_SECONDS:-30} \
		$(PY) -m pytest -q -s -p no:cacheprovider tests/chaos

contracts: install
	$(PY) -m parcours_contracts.export

check-contracts: install
	$(PY) -m parcours_contracts.export --check

k8s: install
	$(PY) deploy/k8s/generate.py

images:
	@for s in $(SERVICES); do docker build -f services/$$s/Dockerfile -t parcours/$$s:$(TAG) . || exit 1; done

clean:
	rm -rf $(VENV) .parcours
