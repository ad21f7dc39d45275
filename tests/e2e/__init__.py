"""A package, so that the fixtures of tests/e2e/conftest.py scoped "package" end with this tier."""
