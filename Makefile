# Shortcuts; dev.py does the work and needs only Python 3.11+.
.PHONY: up test lint ci bench

up:
	python3 dev.py up

test:
	python3 dev.py test

lint:
	.venv/bin/ruff check .

ci:
	bash .ci/run

bench:
	.venv/bin/python bench/apply_bulk.py
