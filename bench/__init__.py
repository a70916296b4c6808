"""Benchmarks of the chatmodel service; never part of the test run. See bench/README.md."""
