"""A release's rollout inputs: its targets from Kubernetes, its measurements from Prometheus.

Targets are the AgentDeployments of the release's model line whose Tenant allows the line,
minus pins, narrowed by `spec.rollout.selector`. Namespace rule: a release reaches an
AgentDeployment in its own namespace, or in any tenant namespace when the release lives in one
of the operator's release namespaces (`--release-namespaces`, default `ml-platform`: the
platform team's). Every other AgentDeployment of the line is refused, and the refusal is named.

Measurements: the due checks (rollout.schedule) as instant PromQL queries on each target's
canary track (and its stable track for relative checks), with the window's canary request count;
exposure from the canary's request and token counters; nothing is measured for a finished
rollout. Without a Prometheus URL, or when it does
not answer, every due check is inconclusive with that reason, never a pass; once it fails to
answer, the rest of the pass does not wait on it again. Must not decide verdicts.
"""

from __future__ import annotations

import math
from datetime import datetime
from string import Template

from ..analysis import queries
from ..analysis.prometheus import Prometheus
from ..analysis.results import ErrorKind, NotANumber, QueryError, QueryResult, Value
from ..api.kinds import AGENT_DEPLOYMENT, MODEL_RELEASE
from ..api.model_release import AnalysisCheck, AnalysisMetric, ModelReleaseSpec, RolloutStatus, ServedBy
from ..kube.client import Kube
from ..reconcile.model_release import RolloutView
from ..reconcile.outcome import Meta
from ..rollout.analysis import measuring
from ..rollout.decision import DueCheck
from ..rollout.durations import seconds
from ..rollout.inputs import Observation, Served, Target
from ..rollout.intents import read_intent
from ..rollout.schedule import FINISHED, due_checks, settling
from ..rollout.targets import Candidate, select_targets
from .gather import tenant_of_namespace
from .indexes import MODEL_LINE, lookup
from .settings import Settings

QUERY_TIMEOUT = 3.0  # seconds per query; one pass never waits on an unreachable server twice
CANARY, STABLE = "canary", "stable"


def may_reach(release_namespace: str, target_namespace: str, s: Settings) -> bool:
    return target_namespace == release_namespace or release_namespace in s.release_namespaces


def candidates(kube: Kube, meta: Meta, spec: ModelReleaseSpec, s: Settings,
               ) -> tuple[list[Candidate], list[str], list[ServedBy]]:
    """AgentDeployments of the line this release may reach, why each other one is refused, and
    which of them serve this release today with which graph."""
    line = spec.model_line
    releases = {r["metadata"]["name"] for r in lookup(kube, MODEL_RELEASE.kind, MODEL_LINE, line)}
    out, refused, serving = [], [], []
    for agd in lookup(kube, AGENT_DEPLOYMENT.kind, MODEL_LINE, line):
        m, agd_spec = agd["metadata"], agd.get("spec") or {}
        where = f"{m['namespace']}/{m['name']}"
        if not may_reach(meta.namespace, m["namespace"], s):
            refused.append(f"{where} refused: only releases in {', '.join(s.release_namespaces)} "
                           f"reach other namespaces")
            continue
        tenant = tenant_of_namespace(kube, m["namespace"])
        if tenant is None or line not in tenant.spec.allowed_model_lines:
            owner = f"Tenant {tenant.name}" if tenant else "no Tenant"
            refused.append(f"{where} refused: {owner} does not allow model line {line}")
            continue
        status = agd.get("status") or {}
        if meta.name in (status.get("release"), status.get("stableRelease"), status.get("canaryRelease")):
            serving.append(ServedBy(namespace=m["namespace"], name=m["name"],
                                    graph=(status.get("graph") or {}).get("served")))
        placement = tenant.spec.rollout
        out.append(Candidate(
            namespace=m["namespace"], name=m["name"], tenant=tenant.name, labels=m.get("labels") or {},
            pinned_release=agd_spec.get("release"),
            tenant_pin=placement.pinned_release if placement.pinned_release in releases else None,
            wave=placement.wave, max_weight=placement.max_canary_weight,
            stable_release=_stable(status, meta.name),
            traffic="Gateway" if (agd_spec.get("traffic") or {}).get("gatewayRef") else "ReplicaRatio"))
    return out, refused, serving


def _stable(status: dict, release: str) -> str | None:
    # What the deployment serves today; the release itself is never its own stable track.
    stable = status.get("stableRelease") or status.get("release")
    return stable if stable != release else None


def why_not(c: Candidate) -> str:
    """Why an AgentDeployment of the line (that tenancy allows) is not a target."""
    where = f"{c.namespace}/{c.name}"
    if c.pinned_release is not None:
        return f"{where} is pinned to {c.pinned_release} (spec.release)"
    if c.tenant_pin is not None:
        return f"{where} is pinned to {c.tenant_pin} by Tenant {c.tenant}"
    return f"{where} does not match spec.rollout.selector"


def check_query(check: AnalysisCheck, release: str, track: str, target: Target) -> str:
    """The PromQL of one check on one track of one target: the user's (with its $variables
    substituted, label values escaped) or the built-in one."""
    window = int(max(1, round(seconds(check.window))))
    if check.query is not None:
        esc = queries.escape_label_value
        return Template(check.query).safe_substitute(
            release=esc(release), track=esc(track), tenant=esc(target.tenant),
            namespace=esc(target.namespace), agentDeployment=esc(target.name),
            window=queries.window_literal(window))
    where = queries.Slice(release=release, track=track, tenant=target.tenant, agent_deployment=target.name)
    return queries.builtin_query(AnalysisMetric(check.metric), where, window)


class Measurer:
    """Runs queries for one pass; after one unanswered query the rest are not sent."""

    def __init__(self, url: str | None):
        self.prometheus = Prometheus(url, timeout=QUERY_TIMEOUT) if url else None
        self.down: str | None = None if url else "no Prometheus URL configured (tugboat run --prometheus-url)"

    def query(self, expr: str) -> QueryResult:
        if self.down is not None:
            return QueryError(ErrorKind.UNREACHABLE, self.down)
        result = self.prometheus.query(expr)
        if isinstance(result, QueryError) and result.kind in (ErrorKind.UNREACHABLE, ErrorKind.TIMEOUT):
            self.down = result.message
        return result


def _number(result: QueryResult) -> float | None:
    if isinstance(result, Value):
        return result.value
    if isinstance(result, NotANumber):
        return math.nan
    return None  # NoData (or an error, reported on its own)


def observe_check(m: Measurer, due: DueCheck, release: str, target: Target, now: datetime) -> Observation:
    check = due.check
    query = check_query(check, release, CANARY, target)
    base = {"namespace": due.namespace, "name": due.name, "check": check.name, "at": now, "query": query}
    result = m.query(query)
    if isinstance(result, QueryError):
        if result.kind in (ErrorKind.UNREACHABLE, ErrorKind.TIMEOUT):
            return Observation(**base, unreachable=True, detail=result.message)
        return Observation(**base, error=f"{result.kind}: {result.message}")
    window = int(max(1, round(seconds(check.window))))
    canary = queries.Slice(release=release, track=CANARY, tenant=target.tenant, agent_deployment=target.name)
    requests = _number(m.query(queries.request_count(canary, window)))
    stable = None
    if check.max_regression is not None and due.stable_release:
        stable = _number(m.query(check_query(check, due.stable_release, STABLE, target)))
    return Observation(**base, value=_number(result), stable_value=stable, requests=requests,
                       unreachable=m.down is not None, detail=m.down or "")


def served(m: Measurer, release: str, target: Target) -> Served | None:
    """What the canary served so far: its counters summed over its pods (a restarted canary pod
    starts its counters again, so this can only undercount)."""
    where = queries.Slice(release=release, track=CANARY, tenant=target.tenant, agent_deployment=target.name)
    requests = m.query(f"sum({queries.series(queries.REQUESTS, where)})")
    tokens = m.query(f"sum({queries.series(queries.TOKENS, where)})")
    if not isinstance(requests, Value):
        return None  # unknown is not zero: keep what the status says
    return Served(target.namespace, target.name, requests.value,
                  tokens.value if isinstance(tokens, Value) else 0.0)


def gather(kube: Kube, obj: dict, spec: ModelReleaseSpec, status: RolloutStatus | None, s: Settings,
           now: datetime, alias_version: str | None = None) -> RolloutView:
    meta = Meta.of(obj)
    found, refused, serving = candidates(kube, meta, spec, s)
    targets = select_targets(spec.rollout.selector, found)
    by_key = {t.key: t for t in targets}
    refused += [why_not(c) for c in found if (c.namespace, c.name) not in by_key]
    m = Measurer(s.prometheus_url)
    if status is not None and status.phase in FINISHED:
        # Only a fresh rollback is still counted: what its canary served while breaching.
        late = [got for plan in status.targets if settling(status, now)
                and (target := by_key.get((plan.namespace, plan.name))) is not None
                and (got := served(m, meta.name, target)) is not None]
        return RolloutView(targets=targets, refused=tuple(refused), alias_version=alias_version,
                           intent=read_intent(obj["metadata"].get("annotations")), served_by=tuple(serving),
                           served=tuple(late))
    observations = []
    for due in due_checks(spec.rollout, status, now):
        target = by_key.get((due.namespace, due.name))
        if target is not None:
            observations.append(observe_check(m, due, meta.name, target, now))
    exposure = []
    for plan in (status.targets if status else []):
        target = by_key.get((plan.namespace, plan.name))
        if target is not None and measuring(plan) and (got := served(m, meta.name, target)) is not None:
            exposure.append(got)
    return RolloutView(targets=targets, refused=tuple(refused), observations=tuple(observations),
                       served=tuple(exposure), intent=read_intent(obj["metadata"].get("annotations")),
                       alias_version=alias_version, served_by=tuple(serving))
