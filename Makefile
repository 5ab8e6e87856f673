# Two commands: `make run` (embedded demo, no external server) and `make test` (real PostgreSQL and Redis).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

# Tests run against this machine's PostgreSQL and Redis; override to isolate parallel runs.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/pds_platform
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
PYTEST_ARGS ?=

.PHONY: install run test lint bench services system-deps check-deploy clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e ".[dev]"
	@touch $@

install: $(VENV)/.installed

run: install
	@$(PY) manage.py migrate --noinput -v0
	@$(PY) manage.py load_demo
	@$(PY) manage.py run_platform

system-deps:
	@./scripts/ensure_system_deps.sh

services:
	@./scripts/ensure_services.sh

test: install system-deps services
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_REDIS_URL) REDIS_URL=$(TEST_REDIS_URL) \
	PDS_TEST_FAST_HASHER=1 DJANGO_DEBUG=1 $(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy apps/*/services.py apps/*/selectors.py dicom_gateway

check-deploy: install
	DJANGO_DEBUG=0 DJANGO_SECRET_KEY=$$($(PY) -c 'import secrets;print(secrets.token_urlsafe(64))') \
	DJANGO_ALLOWED_HOSTS=pds.example.org $(PY) manage.py check --deploy --fail-level WARNING

bench: install services
	@./scripts/ensure_system_deps.sh --bench
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_REDIS_URL) REDIS_URL=$(TEST_REDIS_URL) \
	$(PY) benchmarks/ingest.py && $(PY) benchmarks/routing.py && $(PY) benchmarks/dashboard.py

clean:
	rm -rf var/
