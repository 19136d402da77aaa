# Two commands do all set-up on a fresh machine:
#   make demo   bring up the local stack and run the whole cycle
#   make test   run the test suite against the real stack
# Downloads are cached outside the repository (~/.cache/uv, ~/.cache/pip, ~/.m2, ~/.cache/viewcount).

PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
# The environment is installed by uv (cache in ~/.cache/uv): the same pinned packages as
# pip, in a fraction of the time. Compiled to bytecode at install, as pip does: where
# PYTHONDONTWRITEBYTECODE is set, every process would otherwise compile each module it
# imports (Airflow, Great Expectations, PySpark) again, and every command ran slower.
UV     := uv==0.13.9

.PHONY: all venv system-deps artifacts test-tools demo test soak test-unit stack-up stack-down stack-status bench clean

all: venv

# Java, Maven and Go are needed to fetch and run the servers; install Java and Maven from
# Debian when they are missing (Go must be 1.24+, newer than Debian's: see README).
system-deps:
	@command -v java >/dev/null && command -v mvn >/dev/null || { \
	  command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] || { echo "need java 17 and maven: install them (apt-get install openjdk-17-jre-headless maven)"; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless maven; }
	@command -v go >/dev/null || { echo "need Go 1.24+ on PATH to build MinIO once (https://go.dev/doc/install)"; exit 1; }

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { echo "need Python 3.11 as $(PYTHON)"; exit 1; }
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check $(UV)
	$(VENV)/bin/uv pip install -q --compile-bytecode --python $(VENV)/bin/python -r requirements.lock
	$(VENV)/bin/uv pip install -q --python $(VENV)/bin/python --no-deps -e .
	@rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP)

artifacts: venv system-deps
	$(VENV)/bin/python -c 'from infra.artifacts import ensure_all; from settings.environment import Settings; \
		from settings.logs import configure; settings = Settings.from_env(); configure(settings.run_dir); ensure_all(settings)'

demo: venv system-deps
	$(VENV)/bin/viewcount demo

# promtool, for the alert rules' tests (built once with go install, cached like MinIO).
test-tools: venv system-deps
	$(VENV)/bin/python -c 'from infra.artifacts import ensure_test_tools; from settings.environment import Settings; \
		from settings.logs import configure; settings = Settings.from_env(); configure(settings.run_dir); ensure_test_tools(settings)'

test: venv system-deps artifacts test-tools
	$(VENV)/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

# The fault tests at full scale (a million events, ten kills per job, 100,000 hostile
# records ...: tests/faults/scale.py); over an hour on a 2-core machine.
soak: venv system-deps artifacts
	$(VENV)/bin/python -m tests.faults.scale -p no:cacheprovider tests/faults $(PYTEST_ARGS)

test-unit: venv
	$(VENV)/bin/python -m pytest -p no:cacheprovider tests/unit $(PYTEST_ARGS)

stack-up: venv system-deps
	$(VENV)/bin/viewcount stack up

stack-down: venv
	$(VENV)/bin/viewcount stack down

stack-status: venv
	$(VENV)/bin/viewcount stack status

# Every script in bench/ at a tiny size against the real stack, each checked against its
# reference (tests/integration/test_bench_smoke.py, also part of make test; a few minutes).
# Full-size runs are one script each, with the commands in docs/benchmarks.md.
bench: venv system-deps artifacts
	$(VENV)/bin/python -m pytest -p no:cacheprovider tests/integration/test_bench_smoke.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) *.egg-info
