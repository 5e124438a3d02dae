# sscp-ops: the two commands a new user runs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run run-exporter run-webhook test lint venv docs clean rules dashboards

$(STAMP): setup.cfg pyproject.toml
	@command -v $(PYTHON) >/dev/null && $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null \
		|| scripts/install-debian-packages -f scripts/run-packages.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

venv: $(STAMP)

## run: the whole kit on loopback (exporter, webhook, Prometheus, Alertmanager); data in var/
run: $(STAMP)
	scripts/install-debian-packages -f scripts/run-packages.txt
	$(BIN)/sscp-ops stack --data-dir var

## run-exporter: only the exporter with the host collector on 127.0.0.1:9810 (embedded defaults)
run-exporter: $(STAMP)
	$(BIN)/sscp-ops exporter

## run-webhook: the ticket webhook on 127.0.0.1:9811 (SQLite in var/, SMS to the log)
run-webhook: $(STAMP)
	@mkdir -p var && test -s var/alertmanager.token || \
		$(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(32))' >var/alertmanager.token
	$(BIN)/sscp-ops webhook --config.file deploy/webhook.yml

## test: install what the tests need, then lint and run every test
test: $(STAMP)
	scripts/install-debian-packages -f scripts/test-packages.txt
	$(BIN)/ruff check .
	$(BIN)/pytest -q

## docs: regenerate the generated documents (config reference)
docs: $(STAMP)
	$(BIN)/python -m sscp_ops.config.reference > docs/config-reference.md

## rules: render rules/*.rules.yml from rules/templates and rules/thresholds.yml
rules: $(STAMP)
	$(BIN)/python rules/render.py

## dashboards: build grafana/dashboards/*.json from grafana/build.py
dashboards: $(STAMP)
	$(BIN)/python grafana/build.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
