# Two commands on a fresh machine: `make run` and `make test` (README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
WEB_PORT ?= 8000
MLLP_PORT ?= 2575
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install run stop test lint browser clean-var

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# Debian's chromium for the browser tests (Playwright drives it; no browser download) and the
# DejaVu fonts the labels embed.
browser:
	@{ command -v chromium >/dev/null && [ -f /usr/share/fonts/truetype/dejavu/DejaVuSansCondensed.ttf ]; } || \
	  { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core; }

run: export DEBUG ?= true
run: export SECURE_HTTPS ?= false
# The demo's tests fall due while you watch: hold their overdue alerts one minute, not the production 30.
run: export ALERT_OVERDUE_HOLD_MINUTES ?= 1
run: export WEB_PORT := $(WEB_PORT)
run: export MLLP_PORT := $(MLLP_PORT)
# Migrate and `db_roles` as the owner, then web, worker, beat and the MLLP listener (Procfile) as the runtime role;
# Ctrl-C stops them and the embedded PostgreSQL and Redis (labflow/devstack.py).
run: install
	exec $(BIN)/python -m labflow.devstack run

# Stops a `make run` in another terminal and the embedded PostgreSQL and Redis under ./var/.
stop:
	@test ! -x $(BIN)/python || $(BIN)/python -m labflow.devstack stop

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports
	$(BIN)/python manage.py makemigrations --check --dry-run --settings labflow.settings_test
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --settings labflow.settings_test --file /dev/null

test: install browser
	$(BIN)/pytest $(PYTEST_ARGS)

clean-var:
	rm -rf var
