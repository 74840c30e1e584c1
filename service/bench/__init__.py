"""Benchmarks and offline evaluations, each registered as ``atlas bench <module name>``."""
