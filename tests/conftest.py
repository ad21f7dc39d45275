"""Shared fixtures: a fixed clock for pure logic."""

from datetime import UTC, datetime

import pytest


@pytest.fixture
def now():
    return datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
