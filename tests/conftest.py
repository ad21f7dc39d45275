"""Shared fixtures: a fixed clock for pure logic. Also the environment every process the suite
starts inherits: nothing may leave loopback (CI runs the suite under a loopback-only guard)."""

import os
from datetime import UTC, datetime

import pytest


def pytest_configure(config):
    # `import mlflow` starts a telemetry client that calls mlflow-telemetry.io: in this process
    # (test modules import mlflow at collection) and in the operators and workloads tests start.
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"


@pytest.fixture
def now():
    return datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
