# Two commands: `make run` (embedded demo, no external server) and `make test` (real PostgreSQL and Redis).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

# Tests run against this machine's PostgreSQL and Redis; override to isolate parallel runs.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/pds_platform
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
# The unit pass runs alongside the integration pass: its own Redis database and PostgreSQL test database.
TEST_REDIS_UNIT_URL ?= redis://127.0.0.1:6379/1
UNIT_TEST_DB_NAME ?= test_$(notdir $(TEST_DATABASE_URL))_unit
PYTEST_ARGS ?=

.PHONY: install run test lint bench services system-deps check-deploy clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e ".[dev]"
	@touch $@

# The OHIF viewer (pinned @ohif/app from the npm registry, scripts/install_ohif.py) when npm is there; without npm
# or the registry it says so and the platform keeps its server-rendered viewer: never fails the install.
install: $(VENV)/.installed
	-@$(PY) scripts/install_ohif.py

# Embedded default, or production with DJANGO_DEBUG=0 (+ secret key, hosts, PostgreSQL, Redis): prepare_platform
# migrates, collects static files in production, loads the demo unless production without PDS_LOAD_DEMO=1.
run: install
	@$(PY) manage.py prepare_platform
	@$(PY) manage.py run_platform

system-deps:
	@./scripts/ensure_system_deps.sh

services:
	@./scripts/ensure_services.sh

test: install system-deps services
	@# Three passes in two lanes, so the suite's wall time is its longest lane, not their sum:
	@# - lane 1 (foreground): the integration tests, on this machine's PostgreSQL and Redis (mostly waiting on
	@#   the processes they drive: gateway, worker, browser);
	@# - lane 2 (background): the unit and database tests on PostgreSQL and Redis (their own test database, var folder and
	@#   Redis database), then the same tests on SQLite and the embedded broker, the `make run` default
	@#   (PostgreSQL-only tests skip themselves), on a file database as `make run` has.
	@# Lane 2's output follows lane 1's; any pass failing fails the target. Exit code 5 (no test selected: a
	@# PYTEST_ARGS that picks only some tests) is not a failure, unless no pass ran anything.
	rm -rf var/test-sqlite var/test-unit && mkdir -p var/test-sqlite var/test-unit
	@( DATABASE_URL=$(TEST_DATABASE_URL) PDS_TEST_DB_NAME=$(UNIT_TEST_DB_NAME) PDS_VAR_DIR=$(CURDIR)/var/test-unit \
	  CELERY_BROKER_URL=$(TEST_REDIS_UNIT_URL) REDIS_URL=$(TEST_REDIS_UNIT_URL) \
	  PDS_TEST_FAST_HASHER=1 DJANGO_DEBUG=1 $(PY) -m pytest -p no:cacheprovider -m "not integration" $(PYTEST_ARGS) \
	  > var/test-unit/pytest.log 2>&1; echo $$? > var/test-unit/rc; \
	  env -u CELERY_BROKER_URL -u REDIS_URL DATABASE_URL=sqlite:///$(CURDIR)/var/test-sqlite/db.sqlite3 \
	  PDS_TEST_DB_NAME=$(CURDIR)/var/test-sqlite/test.sqlite3 PDS_VAR_DIR=$(CURDIR)/var/test-sqlite \
	  PDS_TEST_FAST_HASHER=1 DJANGO_DEBUG=1 $(PY) -m pytest -p no:cacheprovider -m "not integration" $(PYTEST_ARGS) \
	  > var/test-sqlite/pytest.log 2>&1; echo $$? > var/test-sqlite/rc ) & \
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_REDIS_URL) REDIS_URL=$(TEST_REDIS_URL) \
	PDS_TEST_FAST_HASHER=1 DJANGO_DEBUG=1 $(PY) -m pytest -m integration $(PYTEST_ARGS); ig=$$?; wait; \
	echo "=== unit and database tests on PostgreSQL and Redis ==="; cat var/test-unit/pytest.log; \
	echo "=== unit and database tests on SQLite and the embedded broker ==="; cat var/test-sqlite/pytest.log; \
	pg=$$(cat var/test-unit/rc); sq=$$(cat var/test-sqlite/rc); \
	echo "=== exit codes: integration $$ig, PostgreSQL $$pg, SQLite $$sq (0 passed, 5 nothing selected) ==="; \
	for rc in $$ig $$pg $$sq; do test $$rc -eq 0 || test $$rc -eq 5 || exit 1; done; \
	test $$ig -eq 0 || test $$pg -eq 0 || test $$sq -eq 0

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy apps dicom_gateway
	@# The layers of the apps (pyproject.toml [tool.importlinter], docs/architecture.md): stairs go one way.
	$(VENV)/bin/lint-imports --no-cache --no-logo

check-deploy: install
	DJANGO_DEBUG=0 DJANGO_SECRET_KEY=$$($(PY) -c 'import secrets;print(secrets.token_urlsafe(64))') \
	PDS_AUDIT_KEY=$$($(PY) -c 'import secrets;print(secrets.token_urlsafe(48))') \
	DJANGO_ALLOWED_HOSTS=pds.example.org $(PY) manage.py check --deploy --fail-level WARNING

bench: install services
	@./scripts/ensure_system_deps.sh --bench
	@# export: a prefix assignment (VAR=x a && b) would reach only the first script.
	export DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_REDIS_URL) REDIS_URL=$(TEST_REDIS_URL) && \
	$(PY) benchmarks/ingest.py && $(PY) benchmarks/routing.py && $(PY) benchmarks/dashboard.py && \
	$(PY) benchmarks/notify.py && $(PY) benchmarks/load.py

clean:
	rm -rf var/
