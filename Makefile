# Parcours: `make run` starts the whole stack, `make test` runs the suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PACKAGES := libs/contracts libs/runtime libs/devstack services/ingest services/router services/channels services/tracker services/dunning

.PHONY: install run test contracts check-contracts clean

$(VENV)/.installed: constraints.txt $(foreach p,$(PACKAGES),$(wildcard $(p)/pyproject.toml))
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt $(foreach p,$(PACKAGES),$(if $(wildcard $(p)/pyproject.toml),-e $(p))) pytest pytest-asyncio jsonschema aiosmtplib
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) -m parcours_devstack.stack

test: install
	$(PY) -m pytest -q

contracts: install
	$(PY) -m parcours_contracts.export

check-contracts: install
	$(PY) -m parcours_contracts.export --check

clean:
	rm -rf $(VENV) .parcours
