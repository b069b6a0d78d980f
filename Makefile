# The two commands of the README. Both set everything up first (idempotent).
.PHONY: setup demo lint test bench

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/bagkit report examples/cohort.csv --visits examples/visits.csv --caliper 0.2 -o out --force

lint: setup
	.venv/bin/ruff check .
	.venv/bin/lint-imports

test: lint
	.venv/bin/python -m pytest -q

bench: setup
	.venv/bin/python benchmarks/run_all.py
