"""The aiohttp application: routes only, translating HTTP to the runtime and back.

GET /healthz (process up), GET /readyz (200 once a verified model is loaded), GET /metrics
(Prometheus text) and POST /v1/generate. Must not hold request logic: generate_flow does;
refusal_audit audits what no route answers.
"""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from .generate_flow import handle_generate
from .generate_request import MAX_BODY_BYTES
from .metrics import CONTENT_TYPE
from .refusal_audit import mark_handled
from .runtime import Runtime

RUNTIME = web.AppKey("runtime", Runtime)


def build_app(runtime: Runtime) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[mark_handled])
    app[RUNTIME] = runtime
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/v1/generate", generate)
    return app


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    if not rt.ready:
        return web.json_response({"status": "loading"}, status=503)
    return web.json_response({"status": "ready", "release": rt.settings.release,
                              "track": rt.settings.track,
                              "manifestDigest": rt.primary.manifest_digest,
                              "fallback": rt.fallback is not None,
                              "graph": asdict(rt.primary.graph)})


async def metrics(request: web.Request) -> web.Response:
    body = request.app[RUNTIME].metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def generate(request: web.Request) -> web.Response:
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        body = None  # still one reply and one audit line, from generate_flow (a 413)
    reply = await handle_generate(request.app[RUNTIME], body, request.headers)
    return web.json_response(reply.body, status=reply.status, headers=reply.headers)
