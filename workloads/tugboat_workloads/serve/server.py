"""Process startup and shutdown: settings, guardrails, bind, verify+load, serve until signalled.

Decides the order that makes the refusal guarantee hold: the HTTP port answers /healthz at once
but /readyz and /v1/generate only after the primary (and fallback) artifacts verified and
loaded. Exit codes: 0 after a clean SIGTERM/SIGINT, 1 when an artifact is refused (or the port
cannot be bound), 2 for bad flags, guardrails, audit log path, audit key or API keys file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence

from aiohttp import web
from prometheus_client import disable_created_metrics

from .artifact_loader import ArtifactRefused, LoadedModel, load_verified_model
from .audit_key import AuditKey, AuditKeyError, load_audit_key
from .caller_keys import ApiKeys, ApiKeysError, load_api_keys
from .fault_injection import describe_faults
from .guardrail_config import GuardrailConfig, GuardrailConfigError, load_guardrail_config
from .http_app import build_app
from .refusal_audit import refusal_logger
from .runtime import Runtime, build_runtime
from .settings import ServeSettings, SettingsError, env_var, resolve_settings
from .success_detector import build_scorer

log = logging.getLogger("tugboat.serve")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s tugboat-serve: %(message)s")
    # *_created series double the exposition and no dashboard or canary query reads them.
    disable_created_metrics()
    try:
        settings, config = startup_config(sys.argv[1:] if argv is None else argv,
                                          os.environ if environ is None else environ)
        audit_key = load_audit_key(settings.audit_key_file)
        api_keys = load_api_keys(settings.api_keys_file)
    except (SettingsError, GuardrailConfigError, AuditKeyError, ApiKeysError) as err:
        log.error("%s", err)
        return 2
    if api_keys.missing and not settings.no_guardrails:
        log.warning("no API key is valid, every request is a 401: %s", api_keys.missing)
    if audit_key.ephemeral and not settings.no_guardrails:
        log.warning("no audit key file%s: audit prompt digests use a random per-process key "
                    "(id %s) and match only within this process",
                    f" at {settings.audit_key_file}" if settings.audit_key_file else "", audit_key.key_id)
    return asyncio.run(serve(settings, config, audit_key, api_keys))


def startup_config(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[ServeSettings, GuardrailConfig]:
    """The flags, then the guardrails file: what startup checks first (exit 2 on error). Pure
    parsing of what the pod was given; the key files are read after it."""
    settings = resolve_settings(argv, environ)
    return settings, _guardrails(settings)


def _guardrails(settings: ServeSettings) -> GuardrailConfig:
    config = load_guardrail_config(settings.guardrails) if settings.guardrails else GuardrailConfig()
    if (not settings.no_guardrails and config.fallback.mode == "SimpleModel"
            and settings.fallback_artifact is None):
        raise GuardrailConfigError("fallback.mode", "SimpleModel needs --fallback-artifact "
                                   f"(or {env_var('fallback-artifact')})")
    return config


async def serve(settings: ServeSettings, config: GuardrailConfig, audit_key: AuditKey,
                api_keys: ApiKeys) -> int:
    try:
        rt = build_runtime(settings, config, audit_key, api_keys)
    except OSError as err:  # the audit log's directory is missing or read-only
        log.error("cannot open audit log %s: %s", settings.audit_log, err.strerror or err)
        return 2
    # No access log of aiohttp's own: its access-logger hook writes the audit line of every request
    # no handler of ours answered (it needs some logger object to be called at all).
    runner = web.AppRunner(build_app(rt), access_log_class=refusal_logger(rt), access_log=log)
    await runner.setup()
    try:
        if not await _listen(runner, settings):
            return 1
        code = await _load(rt)
        if code == 0:
            await _wait_for_stop_signal()
            log.info("stopping")
        return code
    finally:
        await runner.cleanup()
        rt.close()


async def _listen(runner: web.AppRunner, settings: ServeSettings) -> bool:
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
    except OSError as err:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, err.strerror or err)
        return False
    log.info("listening on http://%s:%d (not ready until the artifact verifies)",
             settings.host, settings.port)
    return True


async def _load(rt: Runtime) -> int:
    loop = asyncio.get_running_loop()
    settings = rt.settings
    try:
        primary = await loop.run_in_executor(None, load_verified_model, settings.artifact,
                                             settings.public_key, settings.graph, settings.graph_fallback)
        fallback = None
        if settings.fallback_artifact:
            fallback = await loop.run_in_executor(None, load_verified_model,
                                                  settings.fallback_artifact, settings.public_key)
            _check_compatible(primary, fallback)
        scorer = build_scorer(rt.config.success_detector, primary.generator.vocab_size)
    except ArtifactRefused as err:
        log.error("%s", err)
        return 1
    except GuardrailConfigError as err:
        log.error("%s", err)
        return 2
    rt.primary, rt.fallback, rt.scorer = primary, fallback, scorer
    rt.metrics.graph(primary.graph)
    (log.warning if primary.graph.served != primary.graph.requested else log.info)(
        "graph %s requested, serving %s: %s", primary.graph.requested, primary.graph.served,
        primary.graph.message)
    if primary.generator.router_shape:
        rt.metrics.expect_router(*primary.generator.router_shape)
    if faults := describe_faults(settings):
        log.warning("%s", faults)
    log.info("ready: release %s track %s, artifact %s (manifest sha256 %s)%s%s", settings.release,
             settings.track, settings.artifact, primary.manifest_digest,
             f", fallback {settings.fallback_artifact}" if fallback else "",
             ", guardrails OFF" if settings.no_guardrails else "")
    return 0


def _check_compatible(primary: LoadedModel, fallback: LoadedModel) -> None:
    if fallback.generator.vocab_size != primary.generator.vocab_size:
        raise ArtifactRefused(fallback.artifact, "IncompatibleModel",
                              f"vocabSize {fallback.generator.vocab_size} differs from the "
                              f"primary's {primary.generator.vocab_size}")


async def _wait_for_stop_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
