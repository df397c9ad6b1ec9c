"""Benchmarks: `make bench` runs every suite (see bench/__main__.py)."""
