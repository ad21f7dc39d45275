"""Before a verified model is loaded: /healthz is up, /readyz and /v1/generate answer 503."""

import asyncio
import json

from aiohttp.test_utils import TestClient, TestServer

from tugboat_workloads.serve.audit_key import ephemeral_key
from tugboat_workloads.serve.caller_keys import ApiKeys
from tugboat_workloads.serve.guardrail_config import parse_guardrail_config
from tugboat_workloads.serve.http_app import build_app
from tugboat_workloads.serve.runtime import build_runtime
from tugboat_workloads.serve.settings import resolve_settings


def test_not_ready_until_a_model_is_loaded(tmp_path):
    settings = resolve_settings(
        ["--artifact", "/nowhere", "--public-key", "/k.pem", "--no-guardrails", "--release", "r1",
         "--track", "stable", "--tenant", "acme", "--agent-deployment", "agent",
         "--audit-log", str(tmp_path / "audit.jsonl")], {})
    runtime = build_runtime(settings, parse_guardrail_config({}), ephemeral_key(), ApiKeys())

    async def scenario():
        async with TestClient(TestServer(build_app(runtime), host="127.0.0.1")) as client:
            health = await client.get("/healthz")
            ready = await client.get("/readyz")
            generate = await client.post("/v1/generate", json={"prompt": "1 2", "maxTokens": 99})
            metrics = await client.get("/metrics")
            return (health.status, ready.status, generate.status, await generate.json(),
                    await metrics.text())

    health, ready, status, body, metrics = asyncio.run(scenario())
    runtime.close()
    assert (health, ready, status) == (200, 503, 503)
    assert body["error"]["reason"] == "NotReady" and json.dumps(body).count("requestId") == 1
    assert 'code="503"' in metrics
    assert not (tmp_path / "audit.jsonl").exists()   # --no-guardrails also switches the audit off
