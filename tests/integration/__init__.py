"""A package, so that the fixtures of tests/integration/conftest.py scoped "package" end with this tier."""
