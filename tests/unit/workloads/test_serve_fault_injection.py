"""Dev-only fault injection: off by default, set only by the process's flags or environment."""

import asyncio
import time
from dataclasses import replace

import pytest

from tugboat_workloads.serve.fault_injection import InjectedFault, describe_faults, inject_faults
from tugboat_workloads.serve.settings import SettingsError, resolve_settings

REQUIRED = ["--artifact", "/a", "--public-key", "/k.pem", "--no-guardrails", "--release", "r1",
            "--track", "canary", "--tenant", "acme", "--agent-deployment", "agent"]


def test_off_by_default():
    settings = resolve_settings(REQUIRED, {})
    assert (settings.dev_inject_error_rate, settings.dev_inject_latency_ms) == (0.0, 0)
    assert describe_faults(settings) is None
    asyncio.run(inject_faults(settings, draw=lambda: 0.0))  # the smallest draw still passes


def test_set_by_flag_or_environment_variable():
    by_flag = resolve_settings([*REQUIRED, "--dev-inject-error-rate", "0.3",
                                "--dev-inject-latency-ms", "200"], {})
    by_env = resolve_settings(REQUIRED, {"TUGBOAT_DEV_INJECT_ERROR_RATE": "0.3",
                                         "TUGBOAT_DEV_INJECT_LATENCY_MS": "200"})
    assert (by_flag.dev_inject_error_rate, by_flag.dev_inject_latency_ms) == (0.3, 200)
    assert by_env == by_flag
    assert describe_faults(by_flag) == "DEV FAULT INJECTION ON: error rate 0.3, added latency 200 ms"


@pytest.mark.parametrize("argv, message", [
    (["--dev-inject-error-rate", "1.5"],
     "--dev-inject-error-rate .or TUGBOAT_DEV_INJECT_ERROR_RATE. must be from"),
    (["--dev-inject-error-rate", "nan"], "must be from 0.0 to 1.0"),
    (["--dev-inject-error-rate", "often"], "must be a number"),
    (["--dev-inject-latency-ms", "-1"],
     "--dev-inject-latency-ms .or TUGBOAT_DEV_INJECT_LATENCY_MS. must be from"),
])
def test_bad_values_name_the_flag(argv, message):
    with pytest.raises(SettingsError, match=message):
        resolve_settings([*REQUIRED, *argv], {})


def test_the_error_rate_fails_the_drawn_share_and_the_latency_delays_every_request():
    settings = replace(resolve_settings(REQUIRED, {}), dev_inject_error_rate=0.3, dev_inject_latency_ms=50)
    asyncio.run(inject_faults(settings, draw=lambda: 0.3))
    with pytest.raises(InjectedFault, match="dev-inject-error-rate 0.3"):
        asyncio.run(inject_faults(settings, draw=lambda: 0.29))
    started = time.perf_counter()
    asyncio.run(inject_faults(settings, draw=lambda: 0.99))
    assert time.perf_counter() - started >= 0.05
