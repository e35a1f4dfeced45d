# Two entry points (README): `make demo` runs the main job, `make test` runs the tests.
# Both create .venv on first use with scripts/bootstrap.sh.
VENV ?= .venv
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test verify bench clean

$(STAMP): pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh $(VENV)
	touch $@

demo: $(STAMP)
	$(VENV)/bin/samic-fast demo

# One torch thread per process unless OMP_NUM_THREADS says otherwise: the suite is many small ops
# and several processes at once, and on a loaded 2-core machine OpenMP barriers across threads that
# wait for each other's cores make it several times slower.
test: $(STAMP)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VENV)/bin/python -m pytest -q $(PYTEST_ARGS)

verify: $(STAMP)
	$(VENV)/bin/samic-fast verify

bench: $(STAMP)
	$(VENV)/bin/samic-fast bench --quick

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks .hypothesis
