"""Benchmarks: each prints numbers from a quiet machine; none fails a test run on a timing."""
