"""One pass of a release's rollout: the plan in status + what was measured -> the next plan. Pure.

A pass reads as its steps: take a person's intent, line the plan up with today's targets, count
the due measurements, roll back on any breach, walk the started targets on by at most one step,
start the next wave when the previous one is promoted, then derive phase, summary, conditions,
events and the requeue time. Same status, observations and `now` in: same decision out, so an
operator restarted mid-step resumes that step and never repeats a finished one.

Rules that never bend: a breach (or too many failed queries) anywhere rolls back everywhere the
release went, earlier waves included, to weight 0 in the same pass; inconclusive analysis holds
and never promotes; a wave starts only when every target of the waves before it is promoted; a
target with nothing stable to protect serves the release at once (the whole line: FirstRelease).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from ..api.base import ConditionStatus
from ..api.model_release import (
    Breach,
    Exposure,
    RolloutPhase,
    RolloutSpec,
    RolloutStatus,
    TargetPlan,
    TargetState,
    Verdict,
)
from ..reasons import Reason
from ..reconcile.outcome import EventIntent
from .analysis import Finding, breach, holding, measuring, record
from .decision import Condition, ConditionType, Decision, RolloutVerdict, TargetEvent
from .inputs import Observation, Served, Target, TargetKey
from .intents import ANNOTATION, Intent, IntentVerb
from .measure import measurement
from .schedule import (
    ACTIVE,
    MIN_REQUEUE_SECONDS,
    SETTLE_RECOUNT_SECONDS,
    SETTLE_SECONDS,
    requeue_after,
    settling,
)
from .steps import enter, waiting_for

DONE = (TargetState.PROMOTED, TargetState.ROLLED_BACK)
TERMINAL = (RolloutPhase.PROMOTED, RolloutPhase.ROLLED_BACK)
PAUSED_MESSAGE = "paused by a person (kubectl tugboat pause)"
_REASONS = {r.value for r in Reason}
_SEVERITY = {Verdict.PASS: 0, Verdict.INCONCLUSIVE: 1, Verdict.ERROR: 2, Verdict.FAIL: 3}


def decide(spec: RolloutSpec, targets: Sequence[Target], status: RolloutStatus | None, now: datetime,
           observations: Sequence[Observation] = (), intent: Intent | None = None,
           served: Sequence[Served] = (), release: str = "release") -> Decision:
    run = _Pass(spec, targets, status or RolloutStatus(), now, release)
    finished = run.status.phase in TERMINAL
    if finished:
        run.take_intent(intent)  # only a retry reopens a finished rollout
        if run.status.phase in TERMINAL:
            return run.settle(served) if settling(run.status, now) else run.unchanged()
    run.line_up()
    if not finished:
        run.take_intent(intent)
    if run.verdict is None:
        run.count_exposure(served)
        run.count(observations)
        run.roll_back_on_breach()
    if run.verdict is None:
        run.walk()
        run.start_waves()
    return run.finish()


class _Pass:
    def __init__(self, spec: RolloutSpec, targets: Sequence[Target], old: RolloutStatus, now: datetime,
                 release: str):
        self.spec, self.now, self.release, self.old = spec, now, release, old
        self.targets = {t.key: t for t in targets}
        self.checks = tuple(spec.analysis.checks)
        self.status = old
        self.plans: list[TargetPlan] = list(old.targets)
        self.verdict: RolloutVerdict | None = None
        self.events: list[EventIntent] = []
        self.target_events: list[TargetEvent] = []

    # -- events -------------------------------------------------------------------------------
    def tell(self, type_: str, reason: Reason, message: str, plan: TargetPlan | None = None) -> None:
        if plan is None:
            self.events.append(EventIntent(type_, reason, message))
            return
        self.events.append(EventIntent(type_, reason, f"{plan.namespace}/{plan.name}: {message}"))
        self.target_events.append(TargetEvent(plan.namespace, plan.name,
                                              EventIntent(type_, reason, f"{self.release}: {message}")))

    # -- the steps of a pass ------------------------------------------------------------------
    def line_up(self) -> None:
        """One plan per target, in wave order; plans of targets that went away are dropped."""
        by_key = {(p.namespace, p.name): p for p in self.plans}
        out = []
        for key, t in self.targets.items():
            p = by_key.get(key) or TargetPlan(namespace=t.namespace, name=t.name, tenant=t.tenant,
                                              wave=t.wave)
            update = {"tenant": t.tenant, "stable_release": t.stable_release, "traffic": t.traffic}
            if p.state == TargetState.PENDING:
                update["wave"] = t.wave  # a started target keeps the wave it started in
            out.append(p.model_copy(update=update))
        self.plans = sorted(out, key=lambda p: (p.wave, p.namespace, p.name))

    def take_intent(self, intent: Intent | None) -> None:
        if intent is None or intent.raw == self.status.handled_intent:
            return
        self.status = self.status.model_copy(update={"handled_intent": intent.raw})
        verb, phase = intent.verb, self.status.phase
        if verb is None:
            verbs = ", ".join(v.value for v in IntentVerb)
            self.tell("Warning", Reason.INTENT_INVALID,
                      f"annotation {ANNOTATION}={intent.raw!r}: expected <verb>@<token>, verb one of {verbs}")
        elif phase == RolloutPhase.PROMOTED or (phase == RolloutPhase.ROLLED_BACK) != (
                verb == IntentVerb.RETRY):
            self.tell("Normal", Reason.INTENT_IGNORED,
                      f"{verb} ignored: the rollout is {phase or 'not rolled back'}")
        else:
            _INTENTS[verb](self)

    def count_exposure(self, served: Sequence[Served]) -> None:
        by_key = {s.key: s for s in served}
        self.plans = [p.model_copy(update={"exposure": Exposure(requests=s.requests, tokens=s.tokens)})
                      if (s := by_key.get((p.namespace, p.name))) is not None else p for p in self.plans]

    def count(self, observations: Sequence[Observation]) -> None:
        by_target: dict[TargetKey, list[Observation]] = defaultdict(list)
        for o in observations:
            by_target[o.key].append(o)
        by_name = {c.name: c for c in self.checks}
        snapshot_taken = any(p.exposure_at_first_failure is not None for p in self.plans)
        out = []
        for p in self.plans:
            obs = by_target.get((p.namespace, p.name), [])
            if measuring(p) and obs:
                p = record(p, self.checks, [(o, measurement(by_name[o.check], o)) for o in obs
                                            if o.check in by_name])
            out.append(p)
        if not snapshot_taken and _failed(out):
            # What the canary serves from here on is served while breaching.
            out = [p.model_copy(update={"exposure_at_first_failure": p.exposure}) for p in out]
        self.plans = out

    def roll_back_on_breach(self) -> None:
        for p in self.plans:
            if p.state == TargetState.PENDING:
                continue
            finding = breach(p, self.checks)
            if finding is not None:
                self.roll_back(_breach(finding, p, self.now))
                return

    def roll_back(self, why: Breach) -> None:
        """Weight 0 everywhere at once, earlier waves included; stable is never touched."""
        out, total = [], None
        for p in self.plans:
            went = p.weight > 0 or p.state == TargetState.PROMOTED
            exposed = _minus(p.exposure, p.exposure_at_first_failure)
            if exposed is not None:
                total = _plus(total or Exposure(), exposed)
            p = p.model_copy(update={"state": TargetState.ROLLED_BACK, "weight": 0,
                                     "breach_exposure": exposed, "message": f"rolled back ({why.reason})"})
            if went:
                self.tell("Warning", Reason.ROLLED_BACK, f"canary weight 0: {why.message}", p)
            out.append(p)
        self.plans = out
        self.status = self.status.model_copy(update={"breach": why, "breach_exposure": total,
                                                     "paused": False})
        self.tell("Warning", Reason.ROLLED_BACK, f"rolled back everywhere: {why.message}")
        self.verdict = RolloutVerdict(RolloutPhase.ROLLED_BACK, Reason(why.reason), why.message, why)

    def walk(self) -> None:
        """Each started target moves on by at most one step, or holds, or waits."""
        steps, out = self.spec.steps, []
        for p in self.plans:
            t = self.targets[(p.namespace, p.name)]
            if p.state in ACTIVE:
                # A lowered tenant cap takes effect at once; a raised one waits for the next step.
                p = p.model_copy(update={"weight": min(p.weight, t.max_weight)})
                p = self._walk_one(p, t) if p.step < len(steps) else enter(p, steps, len(steps), t, self.now)
            out.append(p)
        self.plans = out

    def _walk_one(self, p: TargetPlan, t: Target) -> TargetPlan:
        steps = self.spec.steps
        hold = holding(p, self.checks)
        if hold is not None:
            message = (f"holding at weight {p.weight}%: {hold.check.name} inconclusive "
                       f"{hold.progress.inconclusive} times in a row "
                       f"(limit {hold.check.inconclusive_limit}): {hold.progress.last.message}; "
                       "never promotes while analysis cannot tell")
            if p.state != TargetState.INCONCLUSIVE:
                self.tell("Warning", Reason.ANALYSIS_INCONCLUSIVE, message, p)
            return p.model_copy(update={"state": TargetState.INCONCLUSIVE, "message": message})
        if self.status.paused:
            state = TargetState.PROGRESSING if p.state == TargetState.INCONCLUSIVE else p.state
            return p.model_copy(update={"state": state, "message": PAUSED_MESSAGE})
        wait = waiting_for(p, steps[p.step], self.checks, self.now)
        if wait is None:
            p = enter(p, steps, p.step + 1, t, self.now)
            if p.state == TargetState.PROMOTED:
                self.tell("Normal", Reason.TARGET_PROMOTED, f"every step passed: {self.release} at 100%", p)
            else:
                self.tell("Normal", Reason.STEP_STARTED, p.message, p)
            return p
        if wait.kind == "started":
            return p  # entered on this pass: its message is the one `enter` wrote
        if wait.kind == "person":
            if p.state != TargetState.PAUSED:
                self.tell("Normal", Reason.WAITING_FOR_PROMOTE, f"step {p.step}: {wait.message}", p)
            return p.model_copy(update={"state": TargetState.PAUSED, "message": wait.message})
        return p.model_copy(update={"state": TargetState.PROGRESSING,
                                    "message": f"step {p.step} of {len(steps)} at weight {p.weight}%: "
                                               f"{wait.message}"})

    def start_waves(self) -> None:
        steps = self.spec.steps
        for i, p in enumerate(self.plans):
            if p.state != TargetState.PENDING:
                continue
            t = self.targets[(p.namespace, p.name)]
            if t.stable_release is None:
                p = enter(p, steps, len(steps), t, self.now).model_copy(
                    update={"message": "nothing stable to protect: serves the release at once"})
                self.tell("Normal", Reason.NO_STABLE_RELEASE, f"no stable release: {self.release} at 100%", p)
            elif self.status.paused:
                p = p.model_copy(update={"message": PAUSED_MESSAGE})
            elif p.wave > (active := self._active_wave()):
                p = p.model_copy(update={"message": f"waiting for wave {active} to be promoted"})
            else:
                p = enter(p, steps, 0, t, self.now)
                self.tell("Normal", Reason.STEP_STARTED, f"wave {p.wave} starts: {p.message}", p)
            self.plans[i] = p

    def _active_wave(self) -> int | None:
        waiting = [p.wave for p in self.plans if p.state not in DONE]
        return min(waiting) if waiting else None

    # -- results ------------------------------------------------------------------------------
    def finish(self) -> Decision:
        if self.verdict is None:
            self.verdict = self._verdict()
            if self.verdict.phase == RolloutPhase.PROMOTED:
                self.tell("Normal", self.verdict.reason, self.verdict.message)
        v = self.verdict
        summary = _summary(self.plans, self._active_wave())
        if v.phase == RolloutPhase.ROLLED_BACK:
            summary |= {"wave": self.old.wave, "step": self.old.step}  # where it stood when it broke
        self.status = self.status.model_copy(update={
            "phase": v.phase, "reason": v.reason, "message": v.message, "targets": self.plans, **summary})
        return Decision(status=self.status, verdict=v, conditions=_conditions(v, self.plans),
                        events=tuple(self.events), target_events=tuple(self.target_events),
                        requeue_after=requeue_after(self.spec, self.status, self.now))

    def settle(self, served: Sequence[Served]) -> Decision:
        """After a rollback: what the canary served while breaching, counted again as the
        scrapes that had not yet seen its last answers come in."""
        self.count_exposure(served)
        total = None
        for i, p in enumerate(self.plans):
            exposed = _minus(p.exposure, p.exposure_at_first_failure)
            if exposed is not None:
                total = _plus(total or Exposure(), exposed)
                self.plans[i] = p.model_copy(update={"breach_exposure": exposed})
        everything = Exposure()
        for p in self.plans:
            everything = _plus(everything, p.exposure)
        self.status = self.status.model_copy(update={"targets": self.plans, "breach_exposure": total,
                                                     "exposure": everything})
        out = self.unchanged()
        left = SETTLE_SECONDS - (self.now - self.status.breach.time).total_seconds()
        return replace(out, status=self.status,
                       requeue_after=max(MIN_REQUEUE_SECONDS, min(left, SETTLE_RECOUNT_SECONDS)))

    def unchanged(self) -> Decision:
        s = self.status
        reason = Reason(s.reason) if s.reason in _REASONS else Reason.RECONCILED
        v = RolloutVerdict(s.phase, reason, s.message or "", s.breach)
        return Decision(status=s, verdict=v, conditions=_conditions(v, list(s.targets)),
                        events=tuple(self.events), target_events=tuple(self.target_events))

    def _verdict(self) -> RolloutVerdict:
        plans, n = self.plans, len(self.spec.steps)
        if not plans:
            return RolloutVerdict(None, Reason.NO_TARGETS,
                                  "no AgentDeployment of the model line is a target (pinned, not "
                                  "selected, or none allowed): nothing rolls out")
        if all(p.state == TargetState.PROMOTED for p in plans):
            if all(p.stable_release is None for p in plans):
                return RolloutVerdict(RolloutPhase.PROMOTED, Reason.FIRST_RELEASE,
                                      "first release of the line (nothing stable anywhere): 100% at once")
            return RolloutVerdict(RolloutPhase.PROMOTED, Reason.ROLLOUT_PROMOTED,
                                  f"every step passed on {len(plans)} targets")
        if self.status.paused:
            return RolloutVerdict(RolloutPhase.PAUSED, Reason.PAUSED_BY_USER,
                                  "paused by a person: no step ends until kubectl tugboat resume; "
                                  "analysis (and rollback) goes on")
        for state, phase, reason in ((TargetState.INCONCLUSIVE, RolloutPhase.INCONCLUSIVE,
                                      Reason.ANALYSIS_INCONCLUSIVE),
                                     (TargetState.PAUSED, RolloutPhase.PAUSED, Reason.WAITING_FOR_PROMOTE)):
            stuck = [p for p in plans if p.state == state]
            if stuck:
                return RolloutVerdict(phase, reason, "; ".join(f"{p.namespace}/{p.name}: {p.message}"
                                                               for p in stuck))
        wave = self._active_wave()
        live = [p for p in plans if p.wave == wave and p.state in ACTIVE]
        step = min((p.step for p in live), default=0)
        weight = max((p.weight for p in live), default=0)
        return RolloutVerdict(RolloutPhase.PROGRESSING, Reason.ROLLOUT_PROGRESSING,
                              f"wave {wave}: step {step} of {n}, weight up to {weight}%")


# -- intents ----------------------------------------------------------------------------------
def _pause(run: _Pass) -> None:
    run.status = run.status.model_copy(update={"paused": True})
    run.tell("Normal", Reason.PAUSED_BY_USER, "paused: no step ends and no wave starts until resume")


def _resume(run: _Pass) -> None:
    run.status = run.status.model_copy(update={"paused": False})
    run.tell("Normal", Reason.RESUMED_BY_USER, "resumed")


def _promote(run: _Pass) -> None:
    run.status = run.status.model_copy(update={"paused": False})
    run.plans = [p.model_copy(update={"pause_released": True}) if p.state in ACTIVE else p for p in run.plans]
    run.tell("Normal", Reason.PROMOTED_BY_USER, "promoted: the current step's pause is over "
             "(its analysis must still pass)")


def _promote_full(run: _Pass) -> None:
    steps, out = run.spec.steps, []
    for p in run.plans:
        if p.state not in DONE:
            p = enter(p, steps, len(steps), run.targets[(p.namespace, p.name)], run.now).model_copy(
                update={"message": "promoted by a person (promote --full): remaining steps skipped"})
        out.append(p)
    run.plans = out
    run.status = run.status.model_copy(update={"paused": False})
    run.tell("Normal", Reason.PROMOTED_BY_USER, "promoted in full: every remaining step and analysis skipped")


def _abort(run: _Pass) -> None:
    run.roll_back(Breach(reason=Reason.ABORTED, message="aborted by a person (kubectl tugboat abort)",
                         time=run.now))


def _retry(run: _Pass) -> None:
    run.plans = [TargetPlan(namespace=p.namespace, name=p.name, tenant=p.tenant, wave=p.wave)
                 for p in run.plans]
    run.status = run.status.model_copy(update={"phase": None, "breach": None, "breach_exposure": None,
                                               "paused": False})
    run.tell("Normal", Reason.ROLLOUT_RETRIED, "retry: starting again from the first step of the first wave")


_INTENTS = {IntentVerb.PAUSE: _pause, IntentVerb.RESUME: _resume, IntentVerb.PROMOTE: _promote,
            IntentVerb.PROMOTE_FULL: _promote_full, IntentVerb.ABORT: _abort, IntentVerb.RETRY: _retry}


# -- pure helpers -----------------------------------------------------------------------------
def _failed(plans: list[TargetPlan]) -> bool:
    return any(c.failures or c.errors for p in plans for c in p.checks)


def _minus(a: Exposure, b: Exposure | None) -> Exposure | None:
    if b is None:
        return None
    return Exposure(requests=max(0.0, a.requests - b.requests), tokens=max(0.0, a.tokens - b.tokens))


def _plus(a: Exposure, b: Exposure) -> Exposure:
    return Exposure(requests=a.requests + b.requests, tokens=a.tokens + b.tokens)


def _breach(f: Finding, p: TargetPlan, now: datetime) -> Breach:
    m, c = f.progress.last, f.check
    where = f"{c.name} ({c.metric}) on {p.namespace}/{p.name}"
    if f.reason == Reason.ANALYSIS_ERROR:
        message = (f"{where}: {f.progress.errors} failed queries in a row (errorLimit {c.error_limit}): "
                   f"{m.message}; query: {m.query}")
    else:
        message = (f"{where}: value {m.message} (threshold {c.threshold:g}, {c.pass_when}; "
                   f"failure {f.progress.failures}, failureLimit {c.failure_limit}); query: {m.query}")
    return Breach(reason=f.reason, message=message, namespace=p.namespace, target=p.name, check=c.name,
                  metric=c.metric, query=m.query, value=m.value, threshold=c.threshold, time=m.time)


def _lasts(plans: list[TargetPlan]):
    return [c.last for p in plans for c in p.checks if c.last is not None]


def _summary(plans: list[TargetPlan], wave: int | None) -> dict:
    promoted = sum(p.state == TargetState.PROMOTED for p in plans)
    shown = wave if wave is not None else max((p.wave for p in plans), default=None)
    live = [p for p in plans if p.wave == shown]
    started = [p.step for p in live if p.state in ACTIVE]
    lasts = _lasts(plans)
    worst = max(lasts, key=lambda m: _SEVERITY[Verdict(m.verdict)]) if lasts else None
    total = Exposure()
    for p in plans:
        total = _plus(total, p.exposure)
    return {"wave": shown, "step": min(started) if started else None,
            "weight": max((p.weight for p in live), default=None),
            "progress": f"{promoted}/{len(plans)}", "exposure": total,
            "last_verdict": f"{worst.verdict}: {worst.check} {worst.message}" if worst else None}


def _conditions(v: RolloutVerdict, plans: list[TargetPlan]) -> tuple[Condition, ...]:
    T, F, U = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN
    if v.phase == RolloutPhase.ROLLED_BACK:
        return ((ConditionType.PROGRESSING, F, Reason.ROLLED_BACK, v.message),
                (ConditionType.CANARY_HEALTHY, F, v.reason, v.message),
                (ConditionType.ROLLED_BACK, T, v.reason, v.message))
    not_rolled_back = (ConditionType.ROLLED_BACK, F, Reason.NOT_ROLLED_BACK, "not rolled back")
    progressing = (ConditionType.PROGRESSING, F if v.phase in (None, RolloutPhase.PROMOTED) else T,
                   v.reason, v.message)
    lasts = _lasts(plans)
    if v.phase == RolloutPhase.INCONCLUSIVE:
        healthy = (ConditionType.CANARY_HEALTHY, U, Reason.ANALYSIS_INCONCLUSIVE, v.message)
    elif not lasts:
        healthy = (ConditionType.CANARY_HEALTHY, U, Reason.ANALYSIS_PENDING, "no measurement yet")
    else:
        measured = sum(any(c.last for c in p.checks) for p in plans)
        healthy = (ConditionType.CANARY_HEALTHY, T, Reason.ANALYSIS_PASSING,
                   f"every check within its limits on {measured} targets")
    return progressing, healthy, not_rolled_back
