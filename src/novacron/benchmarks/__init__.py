"""Benchmarks behind ``novacron bench …``; each returns one JSON-serialisable dict."""
