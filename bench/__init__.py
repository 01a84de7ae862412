"""Benchmarks (scripts run as files: `.venv/bin/python bench/<script>.py`, see docs/BENCHMARKS.md),
and what they share with the tests that hold the code to the same figures in CI.

bench may import the project and sandbox/, never tests/: the tests import from here instead
(bench.proof for the measured operations and pages, bench.primitives for the test-only model).
"""
