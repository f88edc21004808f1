"""Crash tests: real ``kill -9`` of a writer process, then replay (tests/crash/test_kill9.py)."""
