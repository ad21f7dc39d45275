"""The serving runtime's long-lived state: settings, guardrails, models, metrics, audit log.

Decides what one process holds and when it counts as ready (a verified primary model and its
scorer are in place). Must not handle HTTP or decide requests: see generate_flow and http_app.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .artifact_loader import LoadedModel
from .audit_key import AuditKey
from .audit_log import AuditLog
from .budget_store import RedisBudgetStore
from .caller_keys import ApiKeys
from .guardrail_config import GuardrailConfig
from .metrics import Identity, ServeMetrics
from .settings import ServeSettings
from .success_detector import Scorer
from .token_budget import TokenBudget


@dataclass
class Runtime:
    settings: ServeSettings
    config: GuardrailConfig
    metrics: ServeMetrics
    budget: TokenBudget
    audit: AuditLog | None
    audit_key: AuditKey
    api_keys: ApiKeys
    executor: ThreadPoolExecutor
    primary: LoadedModel | None = None
    fallback: LoadedModel | None = None
    scorer: Scorer | None = field(default=None)

    @property
    def guardrails_on(self) -> bool:
        return not self.settings.no_guardrails

    @property
    def ready(self) -> bool:
        return self.primary is not None and self.scorer is not None

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.audit is not None:
            self.audit.close()


def build_runtime(settings: ServeSettings, config: GuardrailConfig, audit_key: AuditKey,
                  api_keys: ApiKeys) -> Runtime:
    identity = Identity(release=settings.release, track=settings.track, tenant=settings.tenant,
                        agent_deployment=settings.agent_deployment)
    metrics = ServeMetrics(identity)
    metrics.audit_key(audit_key.ephemeral)
    return Runtime(
        settings=settings,
        config=config,
        metrics=metrics,
        budget=_budget(settings, config, metrics),
        # The audit log is a guardrail too: the benchmark baseline switches it off with the rest.
        audit=None if settings.no_guardrails else AuditLog(settings.audit_log),
        audit_key=audit_key,
        api_keys=api_keys,
        executor=ThreadPoolExecutor(max_workers=settings.inference_workers,
                                    thread_name_prefix="onnx"),
    )


def _budget(settings: ServeSettings, config: GuardrailConfig, metrics: ServeMetrics) -> TokenBudget:
    if settings.budget_store is None:
        return TokenBudget(config.token_budget)
    store = RedisBudgetStore(settings.budget_store, config.token_budget.window_seconds)
    metrics.budget_store(store.reachable())
    return TokenBudget(config.token_budget, store=store, store_health=metrics.budget_store)
