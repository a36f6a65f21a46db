# The two commands: `make run` (first run, no services needed) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.12 where the machine has it (pyenv's too), else 3.11.
PYTHON ?= $(shell for p in python3.12 $(HOME)/.pyenv/versions/3.12*/bin/python3.12 python3.11 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet

TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/loyalty
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/loyalty_bench
BENCH_RETENTION_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/loyalty_bench_retention
BENCH_MEMBERS_DATABASE_URL ?= $(BENCH_DATABASE_URL)_members
BENCH_VOUCHERS_DATABASE_URL ?= $(BENCH_DATABASE_URL)_vouchers
BENCH_FRAUD_DATABASE_URL ?= $(BENCH_DATABASE_URL)_fraud

.PHONY: help run test worker lint otp check-deploy bench clean

help:
	@echo "make run           first run: SQLite, in-process tasks, demo data, server on 127.0.0.1:8000"
	@echo "make test          the whole test suite on PostgreSQL and Redis"
	@echo "make worker        Celery worker + beat against Redis (REDIS_URL)"
	@echo "make otp STAFF=x   current authenticator code of demo user x"
	@echo "make lint          ruff, mypy (types) and import-linter (dependency direction)"
	@echo "make check-deploy  Django's deployment checks with production-like settings"
	@echo "make bench         ledger throughput and expiry, member OTP verify and refresh over HTTP, then voucher"
	@echo "                   redemptions at 4 tills over HTTP, on PostgreSQL"
	@echo "                   (fresh loyalty_bench, loyalty_bench_members and loyalty_bench_vouchers databases),"
	@echo "                   then the fraud drill's bench profile (100k members x 90 days, batch detectors timed;"
	@echo "                   loyalty_bench_fraud; BENCH_FRAUD_ARGS='--seed 2 --json drill.json')"
	@echo "                   then the retention purge (1M expired rows, dry run and real vs a batched DELETE;"
	@echo "                   loyalty_bench_retention; BENCH_RETENTION_ARGS='--members 20000')"

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(PIP) install --progress-bar off -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(PIP) install --progress-bar off -r requirements-dev.txt
	@touch $@ $(VENV)/.runtime

# Quiet: migrations without their list, then the demo's log-in block (last), then the server.
run: $(VENV)/.runtime
	@mkdir -p var/static
	@DEBUG=1 $(BIN)/python manage.py migrate --no-input -v 0
	@DEBUG=1 $(BIN)/python manage.py seed_demo
	@DEBUG=1 $(BIN)/python manage.py runserver 127.0.0.1:8000

test: $(VENV)/.dev
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL-$(TEST_REDIS_URL)} \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

worker: $(VENV)/.runtime
	REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} $(BIN)/celery -A loyalty worker --beat \
		--scheduler django_celery_beat.schedulers:DatabaseScheduler --loglevel INFO

otp: $(VENV)/.runtime
	@DEBUG=1 $(BIN)/python manage.py demo_otp $(STAFF)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

check-deploy: $(VENV)/.dev
	$(BIN)/python -m pytest -q tests/loyalty/test_deploy.py

# A fresh database each run (one per benchmark); the test settings give fixed keys and DEBUG off.
bench: $(VENV)/.dev
	$(BIN)/python -c "import psycopg; c = psycopg.connect('$(BENCH_DATABASE_URL)'.rsplit('/', 1)[0] + '/postgres', autocommit=True); \
		c.execute('DROP DATABASE IF EXISTS $(notdir $(BENCH_DATABASE_URL)) WITH (FORCE)'); c.execute('CREATE DATABASE $(notdir $(BENCH_DATABASE_URL))')"
	DJANGO_SETTINGS_MODULE=tests.settings DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python manage.py migrate --no-input -v 0
	DJANGO_SETTINGS_MODULE=tests.settings DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python manage.py bench_ledger $(BENCH_ARGS)
	$(BIN)/python -c "import psycopg; c = psycopg.connect('$(BENCH_MEMBERS_DATABASE_URL)'.rsplit('/', 1)[0] + '/postgres', autocommit=True); \
		c.execute('DROP DATABASE IF EXISTS $(notdir $(BENCH_MEMBERS_DATABASE_URL)) WITH (FORCE)'); c.execute('CREATE DATABASE $(notdir $(BENCH_MEMBERS_DATABASE_URL))')"
	DJANGO_SETTINGS_MODULE=tests.settings DATABASE_URL=$(BENCH_MEMBERS_DATABASE_URL) $(BIN)/python manage.py migrate --no-input -v 0
	DJANGO_SETTINGS_MODULE=tests.settings DATABASE_URL=$(BENCH_MEMBERS_DATABASE_URL) $(BIN)/python manage.py bench_members $(BENCH_MEMBERS_ARGS)
	$(BIN)/python -c "import psycopg; c = psycopg.connect('$(BENCH_VOUCHERS_DATABASE_URL)'.rsplit('/', 1)[0] + '/postgres', autocommit=True); \
		c.execute('DROP DATABASE IF EXISTS $(notdir $(BENCH_VOUCHERS_DATABASE_URL)) WITH (FORCE)'); c.execute('CREATE DATABASE $(notdir $(BENCH_VOUCHERS_DATABASE_URL))')"
	DJANGO_SETTINGS_MODULE=tests.settings DATABASE_URL=$(BENCH_VOUCHERS_DATABASE_URL) $(BIN)/python manage.py migrate --no-input -v 0
	DJANGO_SETTINGS_MODULE=tests.settings DATABASE_URL=$(BENCH_VOUCHERS_DATABASE_URL) $(BIN)/python manage.py bench_vouchers $(BENCH_VOUCHERS_ARGS)
	$(BIN)/python -c "import psycopg; c = psycopg.connect('$(BENCH_FRAUD_DATABASE_URL)'.rsplit('/', 1)[0] + '/postgres', autocommit=True); \
		c.execute('DROP DATABASE IF EXISTS $(notdir $(BENCH_FRAUD_DATABASE_URL)) WITH (FORCE)'); c.execute('CREATE DATABASE $(notdir $(BENCH_FRAUD_DATABASE_URL))')"
	DJANGO_SETTINGS_MODULE=tests.settings DATABASE_URL=$(BENCH_FRAUD_DATABASE_URL) $(BIN)/python manage.py migrate --no-input -v 0
	DJANGO_SETTINGS_MODULE=tests.settings DATABASE_URL=$(BENCH_FRAUD_DATABASE_URL) $(BIN)/python manage.py fraud_drill --profile bench $(BENCH_FRAUD_ARGS)
	$(BIN)/python -c "import psycopg; c = psycopg.connect('$(BENCH_RETENTION_DATABASE_URL)'.rsplit('/', 1)[0] + '/postgres', autocommit=True); \
		c.execute('DROP DATABASE IF EXISTS $(notdir $(BENCH_RETENTION_DATABASE_URL)) WITH (FORCE)'); c.execute('CREATE DATABASE $(notdir $(BENCH_RETENTION_DATABASE_URL))')"
	DJANGO_SETTINGS_MODULE=tests.settings DATABASE_URL=$(BENCH_RETENTION_DATABASE_URL) $(BIN)/python manage.py migrate --no-input -v 0
	DJANGO_SETTINGS_MODULE=tests.settings DATABASE_URL=$(BENCH_RETENTION_DATABASE_URL) $(BIN)/python manage.py bench_retention $(BENCH_RETENTION_ARGS)

clean:
	rm -rf $(VENV) var
