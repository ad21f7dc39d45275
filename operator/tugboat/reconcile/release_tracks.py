"""Which releases an AgentDeployment's two tracks serve, from its releases' rollout plans. Pure.

Decides the stable release (a pin; else what the deployment serves today while it stays
servable, replaced only by a release promoted everywhere it rolls out; else, with nothing stable
yet, the line's first release), the canary release and its weight (a plan for this deployment
that is Progressing, Paused or Inconclusive, or Promoted here while later waves still roll: then
the canary serves 100% and the stable keeps running the old release, fully scaled, so a breach in
a later wave takes the traffic back at once) and the traffic mode. The rollout
is the only road to traffic: a release that is merely Ready never takes the stable's place.
The ModelRelease decides the plan; this module only reads it. Must not read the cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..api.agent_deployment import AgentDeploymentSpec, TrafficMode
from ..api.model_release import TargetPlan, TargetState
from ..reasons import Reason
from .serving_graph import PublishedGraph
from .tenancy import TenantView

SERVABLE_PHASES = ("Ready", "Promoted")
CANARY_STATES = (TargetState.PROGRESSING, TargetState.PAUSED, TargetState.INCONCLUSIVE)


@dataclass(frozen=True)
class ReleaseView:
    """A ModelRelease as serving sees it, with its rollout plan for the deployment observing it."""

    name: str
    namespace: str
    model_line: str
    verified: bool
    phase: str | None
    artifact_uri: str | None
    digest: str | None
    created: str  # RFC 3339, so it sorts by time
    graphs: tuple[PublishedGraph, ...] = ()
    plan: TargetPlan | None = None  # status.rollout.targets[] entry for this deployment
    rollout_reason: str | None = None  # status.rollout.reason
    has_rollout: bool = False  # status.rollout exists (False: written before rollouts existed)


@dataclass(frozen=True)
class Tracks:
    stable: ReleaseView | None
    canary: ReleaseView | None
    weight: int  # canary share in percent, 0 without a canary
    state: TargetState | None  # of the plan that placed the canary (or the stable)
    mode: TrafficMode
    message: str  # why nothing is stable when stable is None, else what the tracks are


def _usable(r: ReleaseView, line: str) -> bool:
    return r.model_line == line and r.verified and bool(r.artifact_uri) and bool(r.digest)


def _newest(releases: Iterable[ReleaseView]) -> ReleaseView | None:
    return max(releases, key=lambda r: (r.created, r.name), default=None)


def _state(r: ReleaseView) -> TargetState | None:
    return r.plan.state if r.plan is not None else None


def _promoted_here(r: ReleaseView) -> bool:
    """Promoted for this deployment for good: the whole rollout ended Promoted, or there was
    nothing stable here to protect (nothing to take the traffic back to)."""
    return _state(r) == TargetState.PROMOTED and (r.phase == "Promoted" or r.plan.stable_release is None)


def _in_canary(r: ReleaseView) -> bool:
    return _state(r) in CANARY_STATES or (_state(r) == TargetState.PROMOTED and not _promoted_here(r))


def pin_of(spec: AgentDeploymentSpec, tenant: TenantView, releases: tuple[ReleaseView, ...]) -> str | None:
    """The deployment's own pin wins; the tenant's pin counts only for releases of this line."""
    if spec.release:
        return spec.release
    pinned = tenant.spec.rollout.pinned_release
    if pinned and any(r.name == pinned and r.model_line == spec.model_line for r in releases):
        return pinned
    return None


def _stable(usable: list[ReleaseView], current: str | None) -> ReleaseView | None:
    by_name = {r.name: r for r in usable}
    today = by_name.get(current or "")
    if today is not None and _state(today) == TargetState.ROLLED_BACK:
        # Rolled back after it was promoted here (a later wave breached): back to what it replaced.
        today = by_name.get(today.plan.stable_release or "")
    promoted = [r for r in usable if _promoted_here(r)]
    if today is not None or promoted:
        return _newest([*promoted, *([today] if today is not None else [])])
    # Nothing stable here yet: the line's first release, at once.
    first = [r for r in usable if r.phase in SERVABLE_PHASES and r.rollout_reason == Reason.FIRST_RELEASE]
    if first:
        return _newest(first)
    # A deployment that came after its line's newest release finished rolling out has nothing to
    # protect either: that release, at once (its rollout took it nowhere it was not promoted).
    done = [r for r in usable if r.phase == "Promoted"]
    if done:
        return _newest(done)
    # Releases from before rollouts existed carry no rollout status: today's rule, newest Ready.
    return _newest(r for r in usable if r.phase in SERVABLE_PHASES and not r.has_rollout)


def tracks_for(spec: AgentDeploymentSpec, tenant: TenantView, releases: tuple[ReleaseView, ...],
               current_stable: str | None) -> Tracks:
    mode = TrafficMode.GATEWAY if spec.traffic.gateway_ref is not None else TrafficMode.REPLICA_RATIO
    usable = [r for r in releases if _usable(r, spec.model_line)]
    pin = pin_of(spec, tenant, releases)
    if pin:
        match = sorted((r for r in usable if r.name == pin), key=lambda r: r.namespace)
        if not match:
            return Tracks(None, None, 0, None, mode,
                          f"pinned release {pin} of model line {spec.model_line} is not verified "
                          "(or does not exist); waiting for it to be verified")
        return Tracks(match[0], None, 0, None, mode, f"pinned to release {pin}: no rollout here")
    stable = _stable(usable, current_stable)
    if stable is None:
        return Tracks(None, None, 0, None, mode,
                      f"model line {spec.model_line} has no verified release that may serve here yet "
                      f"(promoted here, the line's first release, or {' or '.join(SERVABLE_PHASES)} "
                      "from before rollouts); nothing unverified or unrolled-out is ever served")
    canary = _newest(r for r in usable if r.name != stable.name and _in_canary(r)
                     and (r.created, r.name) > (stable.created, stable.name))
    if canary is None:
        return Tracks(stable, None, 0, _state(stable), mode, f"stable release {stable.name}, no canary")
    weight = max(0, min(100, canary.plan.weight))
    return Tracks(stable, canary, weight, canary.plan.state, mode,
                  f"stable release {stable.name}, canary {canary.name} at {weight}% "
                  f"({canary.plan.state}, step {canary.plan.step})")
