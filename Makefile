# kameng — `make demo` runs the whole platform on an embedded database; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PG_TEST_URL ?= postgres://postgres@127.0.0.1:5432/kameng
MARIADB_TEST_URL ?= mysql://root@127.0.0.1:3306/kameng
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: bench-deps demo install install-dev test lint typecheck imports migrations-check test-sqlite test-postgres \
        test-mariadb test-e2e e2e-deps bench bench-import bench-topup bench-openapi bench-flash bench-login clean

$(VENV)/.runtime: requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "需要 Python 3.11（$(PYTHON) 未找到）"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.lock
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.lock
	$(PIP) install -q -r requirements-dev.lock
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

## demo: install, migrate the embedded SQLite database, seed a demo shop, run web + worker + scheduler.
demo: install
	$(PY) -m kameng.demo

## test: lint, types, import contracts, migrations, then pytest on SQLite and PostgreSQL (and the browser test).
test: install-dev lint typecheck imports migrations-check test-sqlite test-postgres test-mariadb test-e2e

lint: install-dev
	$(VENV)/bin/ruff check kameng tests bench

typecheck: install-dev
	$(VENV)/bin/mypy kameng tests

imports: install-dev
	$(VENV)/bin/lint-imports

# On a fresh, empty database, as on a new machine: system checks must not need any table. Twice: with the gateway
# simulators (tests, demo) and without them (production, where they are not installed).
migrations-check: install-dev
	rm -f /tmp/kameng-migrations-check.sqlite3
	DATABASE_URL=sqlite:////tmp/kameng-migrations-check.sqlite3 DJANGO_SETTINGS_MODULE=kameng.settings.test \
		$(PY) manage.py makemigrations --check --dry-run
	DATABASE_URL=sqlite:////tmp/kameng-migrations-check.sqlite3 DJANGO_SETTINGS_MODULE=kameng.settings.test \
		KAMENG_SIMULATORS_ENABLED=0 $(PY) manage.py makemigrations --check --dry-run

test-sqlite: install-dev
	DATABASE_URL=sqlite:////tmp/kameng-test.sqlite3 $(PY) -m pytest -q -m "not e2e and not postgres" -n 2

test-postgres: install-dev
	@if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || $(PY) -c "import socket;socket.create_connection(('127.0.0.1',5432),1)" 2>/dev/null; then \
		DATABASE_URL=$(PG_TEST_URL) $(PY) -m pytest -q -m "not e2e" -n 2; \
	elif [ "$$CI" = "true" ]; then echo "CI=true: PostgreSQL is not reachable on 127.0.0.1:5432"; exit 1; \
	else echo "PostgreSQL not reachable: skipping the PostgreSQL run (CI=true makes this a failure)"; fi

# MariaDB is supported but optional: run when a server answers on 127.0.0.1:3306. Django's date functions need
# the server's time-zone tables, loaded once from the system zoneinfo (idempotent).
test-mariadb: install-dev
	@if $(PY) -c "import socket;socket.create_connection(('127.0.0.1',3306),1)" 2>/dev/null; then \
		mysql -u root -h 127.0.0.1 -N -e "SELECT COUNT(*) FROM mysql.time_zone_name" 2>/dev/null | grep -qv '^0$$' \
			|| (mysql_tzinfo_to_sql /usr/share/zoneinfo 2>/dev/null | mysql -u root -h 127.0.0.1 mysql); \
		DATABASE_URL=$(MARIADB_TEST_URL) $(PY) -m pytest -q -m "not e2e and not postgres" -n 2; \
	else echo "MariaDB not reachable on 127.0.0.1:3306: skipping the MariaDB run (optional backend)"; fi

# Chromium, and a CJK font beside it: without one every Chinese character of a screenshot is a box (the browser
# tests check that the product page draws Chinese glyphs, tests/e2e/test_browser_fonts.py).
e2e-deps:
	@test -x /usr/bin/chromium || { echo "installing Debian's chromium for the browser test"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| { [ "$$CI" = "true" ] && exit 1 || echo "could not install chromium (not root?)"; }; }
	@fc-list :lang=zh 2>/dev/null | grep -q . || { echo "installing Debian's fonts-noto-cjk for the browser test"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null) \
		|| { [ "$$CI" = "true" ] && exit 1 || echo "could not install fonts-noto-cjk (not root?)"; }; }

test-e2e: install-dev e2e-deps
	@if [ -x /usr/bin/chromium ]; then DATABASE_URL=sqlite:////tmp/kameng-e2e.sqlite3 $(PY) -m pytest -q -m e2e -p no:xdist; \
	elif [ "$$CI" = "true" ]; then echo "CI=true: chromium missing"; exit 1; \
	else echo "chromium missing: skipping the browser test"; fi

## bench: the checkout benchmark (PostgreSQL + Redis + granian, 64 clients; installs wrk if missing): three rounds,
## each checkout run followed by a floor run, and the ratio of each round (the machine's speed drifts).
bench: install-dev bench-deps
	$(PY) bench/checkout.py --floor --rounds 3

## bench-import: 1,000,000 card keys through the admin's import service on PostgreSQL, beside a raw COPY floor.
## BENCH_IMPORT_ARGS="--keys 100000" for a quick run; PostgreSQL from BENCH_PG_URL (default 127.0.0.1:5432).
bench-import: install
	$(PY) bench/import.py $(BENCH_IMPORT_ARGS)

## bench-topup: 10,000 direct top-ups against the supplier simulator at 200 ms latency (PostgreSQL + granian).
bench-topup: install-dev
	$(PY) bench/topup.py

## bench-openapi: one busy reseller, 64 signed Open API orders at once from ONE wallet, beside pgbench on that row.
bench-openapi: install-dev bench-deps
	$(PY) bench/openapi_busy.py $(BENCH_OPENAPI_ARGS)

## bench-flash: a flash sale, 1,000 resellers racing through the Open API for 500 keys of one SKU.
bench-flash: install-dev
	$(PY) bench/flash_sale.py $(BENCH_FLASH_ARGS)

## bench-login: login and SMS-code load from many loopback addresses; checks the limits and that the site answers.
bench-login: install-dev
	$(PY) bench/login_load.py

bench-deps:
	@command -v wrk >/dev/null || { echo "installing Debian's wrk for the benchmark"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	@command -v pgbench >/dev/null || ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1 || { \
		echo "installing Debian's postgresql-client for pgbench"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client >/dev/null; }

clean:
	rm -rf $(VENV) var staticfiles
