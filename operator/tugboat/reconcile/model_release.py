"""ModelRelease: checkpoint -> exported -> signed -> verified -> registered -> Ready -> rollout. Pure.

Each stage is recorded as a condition (Exported, Signed, Verified, Registered), so a restarted
operator resumes at the first stage not yet True and never redoes finished work. A failed stage
is final for this generation: nothing unverified is ever marked Ready.

Once Ready, the rollout phase hands what the controller gathered (targets, measurements, a
person's intent) to the rollout state machine and merges its answer: `status.rollout`, its
conditions, events on the release and on each AgentDeployment it reaches, the phase
(Progressing, Paused, Inconclusive, Promoted, RolledBack; Ready while nothing rolls out) and
when to look again. The registry alias moves to this version once Promoted, never otherwise.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import datetime

from ..api.base import API_VERSION
from ..api.kinds import AGENT_DEPLOYMENT, MODEL_RELEASE
from ..api.model_release import (
    ExportTarget,
    GraphReport,
    ModelReleaseSpec,
    ModelReleaseStatus,
    RolloutPhase,
    ServedBy,
    SigningMethod,
)
from ..builders.model_release import (
    KEY_MISSING_JOB_REASON,
    ReleaseContext,
    build_export_job,
    build_sign_job,
    job_name,
)
from ..conditions import find, is_true
from ..reasons import Reason
from ..rollout.decide import decide as decide_rollout
from ..rollout.inputs import Observation, Served, Target
from ..rollout.intents import Intent
from ..rollout.targets import describe
from ..tracking import UnsafeFilterValue, filter_literal
from .outcome import Meta, ObjectEvent, Outcome, phase_event, set_conditions
from .provenance import checkpoint_prefix, checkpoint_refusal
from .validity import validate

POLL_SECONDS = 5.0
EXPORT_REPORT = "export_report.json"
STAGES = ("Exported", "Signed", "Verified", "Registered")
FAILURES = {Reason.SOURCE_FAILED, Reason.UNTRUSTED_CHECKPOINT, Reason.EXPORT_FAILED, Reason.SIGN_FAILED,
            Reason.SIGNING_KEY_NOT_FOUND, "DigestMismatch", "UnexpectedFile", "MissingFile", "BadSignature",
            "MissingSignature", "MalformedManifest", "UnsafeExternalData"}


@dataclass(frozen=True)
class SourceView:
    ready: bool
    failed: bool
    checkpoint: str | None
    message: str = ""
    uid: str = ""  # the TrainingRun's: its storage prefix is the only place its checkpoint may be


@dataclass(frozen=True)
class JobView:
    succeeded: bool
    failed: bool
    message: str = ""
    reason: str = ""  # of the Job's Failed condition


@dataclass(frozen=True)
class VerifyView:
    ok: bool
    reason: str
    message: str
    manifest_digest: str | None = None
    graphs: tuple[GraphReport, ...] = ()


def graphs_from_report(report: dict, files: set[str]) -> tuple[GraphReport, ...]:
    """Each graph of export_report.json's parity section; published only if its file was signed."""
    out = []
    for name, entry in sorted((report.get("parity") or {}).items(), key=lambda kv: (kv[0] != "fp32", kv[0])):
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            continue
        published = entry["file"] in files and entry.get("published", True) is not False
        out.append(GraphReport(name=name, file=entry["file"], published=published,
                               top1_agreement=_round(entry.get("top1Agreement")),
                               probe_top1_agreement=_round(entry.get("probeTop1Agreement")),
                               max_abs_error=_significant(entry.get("maxAbsError")),
                               reason=None if published
                               else entry.get("reason") or "not in the signed artifact"))
    return tuple(out)


def _round(value, digits: int = 4):
    return round(value, digits) if isinstance(value, int | float) else None


def _significant(value):
    return float(f"{value:.3g}") if isinstance(value, int | float) else None


@dataclass(frozen=True)
class RegisterModel:
    """Action: register the verified artifact directory as a new version of `name` in MLflow."""

    name: str
    source: str
    tags: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SetAlias:
    """Action: point the registered model's alias at this release's version (on promotion)."""

    name: str
    alias: str
    version: str


@dataclass(frozen=True)
class RolloutView:
    """What the controller gathered for the rollout phase."""

    targets: tuple[Target, ...] = ()
    refused: tuple[str, ...] = ()  # AgentDeployments of the line this release may not reach, and why
    observations: tuple[Observation, ...] = ()
    served: tuple[Served, ...] = ()
    intent: Intent | None = None
    alias_version: str | None = None  # the version spec.registry.alias names today (read once Promoted)
    served_by: tuple[ServedBy, ...] = ()  # deployments serving this release today, with their graph


@dataclass(frozen=True)
class Config:
    image: str
    pool_label: str
    artifact_root: str
    artifact_pvc: str | None
    registry: bool  # an MLflow registry is configured


@dataclass(frozen=True)
class Observed:
    meta: Meta
    spec: dict
    status: ModelReleaseStatus
    source: SourceView | None = None  # None: the TrainingRun does not exist
    jobs: dict[str, JobView] | None = None  # by role: export, export-tensorrt, sign
    verification: VerifyView | None = None  # made only once Signed and a trusted key exists
    trusted_key: bool = False
    trust_problem: str | None = None  # why the trusted key cannot verify anything (trust_key)
    registry_version: str | None = None
    config: Config | None = None
    rollout: RolloutView | None = None  # None: not gathered (the release is not verified yet)


def _signing_supported(spec: ModelReleaseSpec):
    # The sign workload signs with a private key only: a keyless request must not be signed with a
    # key behind the user's back (nor crash the pass when no keySecretRef is given).
    if spec.signing.method == SigningMethod.SIGSTORE_KEYLESS:
        return (Reason.INVALID_SPEC, "spec.signing.method: SigstoreKeyless is not supported by the "
                "signing workload yet; use method Key with keySecretRef")
    return None


def _registry_name_searchable(spec: ModelReleaseSpec):
    """The registered model is found again by a search filter: a name no filter can carry exactly
    would be registered anew on every pass."""
    try:
        filter_literal(spec.registry.model_name or spec.model_line)
    except UnsafeFilterValue as exc:
        return Reason.INVALID_SPEC, f"spec.registry.modelName: {exc}"
    return None


def artifact_dir(config: Config, meta: Meta) -> str:
    return f"{config.artifact_root.rstrip('/')}/releases/{meta.namespace}/{meta.name}-{meta.uid[:8]}"


def _owner(meta: Meta) -> dict:
    return {"apiVersion": API_VERSION, "kind": MODEL_RELEASE.kind,
            "metadata": {"name": meta.name, "namespace": meta.namespace, "uid": meta.uid}}


def _failed_stages(status: ModelReleaseStatus, generation: int) -> list[tuple[str, int]]:
    """(stage, generation it failed at) of each failed stage (unrecorded: this generation)."""
    return [(t, generation if c.observed_generation is None else c.observed_generation) for t in STAGES
            if (c := find(status.conditions, t)) is not None and c.status == "False" and c.reason in FAILURES]


# The Jobs a stage ran: retrying the stage deletes them (their names are fixed per release).
_STAGE_JOBS = {"Exported": ("export", "export-tensorrt"), "Signed": ("sign",)}


def _retry(observed: Observed, status: ModelReleaseStatus, failed: list[tuple[str, int]],
           now: datetime) -> Outcome:
    """A failure is final for its generation only: a new spec is judged afresh, from the first
    failed stage on (its Jobs deleted, its conditions and the later stages' dropped)."""
    meta, first = observed.meta, STAGES.index(failed[0][0])
    redo = STAGES[first:]
    kept = [c for c in status.conditions if c.type not in (*redo, "Degraded")]
    message = (f"generation {meta.generation}: retrying from {redo[0]} "
               f"(failed at generation {failed[0][1]})")
    status = set_conditions(status.model_copy(update={"conditions": kept}), now, meta.generation,
                            ("Progressing", True, Reason.RETRYING, message),
                            ("Ready", False, Reason.RETRYING, message))
    status = status.model_copy(update={"phase": "Pending", "message": message})
    jobs = [("batch/v1", "Job", job_name(_owner(meta), role), meta.namespace)
            for stage in redo for role in _STAGE_JOBS.get(stage, ()) if role in (observed.jobs or {})]
    return Outcome(status=status, deletions=tuple(jobs), requeue_after=POLL_SECONDS,
                   events=phase_event(observed.status, status, Reason.RETRYING, message))


class _Step:
    """Accumulates one pass: conditions set, children wanted; stops at the first unfinished stage."""

    def __init__(self, observed: Observed, status: ModelReleaseStatus, now: datetime):
        self.o, self.status, self.now = observed, status, now
        self.children: list[dict] = []
        self.actions: list[object] = []

    def mark(self, type_: str, ok: bool, reason: str, message: str) -> None:
        self.status = set_conditions(self.status, self.now, self.o.meta.generation,
                                     (type_, ok, reason, message))

    def wait(self, phase: str, reason: str, message: str, requeue: float | None = POLL_SECONDS) -> Outcome:
        """`requeue` None: what it waits for sends an event that wakes the release."""
        self.status = set_conditions(self.status, self.now, self.o.meta.generation,
                                     ("Progressing", True, reason, message),
                                     ("Ready", False, reason, message))
        return self._out(phase, message, requeue)

    def fail(self, type_: str, reason: str, message: str) -> Outcome:
        self.mark(type_, False, reason, message)
        self.status = set_conditions(self.status, self.now, self.o.meta.generation,
                                     ("Progressing", False, reason, message),
                                     ("Ready", False, reason, message),
                                     ("Degraded", True, reason, message))
        return self._out("Failed", message, None)

    def _out(self, phase: str, message: str, requeue: float | None) -> Outcome:
        old = self.o.status
        self.status = self.status.model_copy(update={"phase": phase, "message": message})
        reason = find(self.status.conditions, "Progressing").reason
        return Outcome(status=self.status, children=tuple(self.children), actions=tuple(self.actions),
                       requeue_after=requeue, events=phase_event(old, self.status, reason, message))


def _export(step: _Step, spec: ModelReleaseSpec, ctx: ReleaseContext) -> Outcome | None:
    jobs = step.o.jobs or {}
    for target in spec.export.targets:
        role = "export" if target == ExportTarget.ONNX else "export-tensorrt"
        job = jobs.get(role)
        if job is not None and job.failed:
            return step.fail("Exported", Reason.EXPORT_FAILED, f"{target} export failed: {job.message}")
        if job is None or not job.succeeded:
            step.children.append(build_export_job(spec, ctx, target))
            return step.wait("Exporting", Reason.EXPORTING, f"exporting {target} from {ctx.checkpoint}")
    targets = ", ".join(spec.export.targets)
    step.mark("Exported", True, Reason.EXPORTED, f"{targets} written to {ctx.artifact_dir}")
    return None


def _sign(step: _Step, spec: ModelReleaseSpec, ctx: ReleaseContext) -> Outcome | None:
    ref = spec.signing.key_secret_ref
    job = (step.o.jobs or {}).get("sign")
    if job is not None and job.failed and job.reason == KEY_MISSING_JOB_REASON:
        # The operator cannot read Secrets: the sign Job found the key missing and said so.
        return step.fail("Signed", Reason.SIGNING_KEY_NOT_FOUND,
                         f"Secret {ref.name} with key {ref.key} not found in {step.o.meta.namespace}: "
                         f"the sign Job could not read the key ({job.message})")
    if job is not None and job.failed:
        return step.fail("Signed", Reason.SIGN_FAILED, f"signing failed: {job.message}")
    if job is None or not job.succeeded:
        step.children.append(build_sign_job(spec, ctx))
        return step.wait("Signing", Reason.SIGNING, "signing the manifest of per-file digests")
    step.mark("Signed", True, Reason.SIGNED, f"manifest signed with Secret {ref.name}")
    return None


def _verify(step: _Step) -> Outcome | None:
    if not step.o.trusted_key:
        step.mark("Verified", False, Reason.NO_TRUSTED_KEY, "no trusted public key configured")
        return step.wait("Verifying", Reason.NO_TRUSTED_KEY, "waiting for a trusted public key")
    if step.o.trust_problem is not None:
        message = f"the trusted public key is unusable ({step.o.trust_problem}): waiting for the platform " \
                  "team to fix the trust ConfigMap"
        step.mark("Verified", False, Reason.INVALID_TRUSTED_KEY, message)
        return step.wait("Verifying", Reason.INVALID_TRUSTED_KEY, message)
    v = step.o.verification
    if v is None:
        return step.wait("Verifying", Reason.VERIFIED, "verifying digests and signature")
    if not v.ok:
        return step.fail("Verified", v.reason, v.message)
    step.mark("Verified", True, Reason.VERIFIED, v.message)
    step.status = step.status.model_copy(update={"manifest_digest": v.manifest_digest,
                                                 "graphs": list(v.graphs) or None})
    return None


def _register(step: _Step, spec: ModelReleaseSpec, artifact: str) -> Outcome | None:
    if not step.o.config.registry:
        step.mark("Registered", False, "RegistryNotConfigured", "no MLflow registry configured")
        return None
    version = step.o.registry_version
    name = spec.registry.model_name or spec.model_line
    if version is None:
        tags = (("tugboat.dev/release-uid", step.o.meta.uid),
                ("tugboat.dev/manifest-sha256", step.status.manifest_digest or ""),
                ("tugboat.dev/signature", "model.sig"), ("tugboat.dev/release", step.o.meta.name))
        step.actions.append(RegisterModel(name, artifact, tags))
        return step.wait("Registering", Reason.REGISTERING, f"registering a version of {name}")
    step.mark("Registered", True, Reason.REGISTERED, f"{name} version {version}")
    step.status = step.status.model_copy(update={"registry_version": version})
    return None


def source_prefix(config: Config, meta: Meta, spec: ModelReleaseSpec, src: SourceView) -> str:
    """The storage prefix of the source TrainingRun (same namespace as the release)."""
    return checkpoint_prefix(config.artifact_root, meta.namespace, spec.source.training_run or "", src.uid)


def _source_problem(step: _Step, spec: ModelReleaseSpec, src: SourceView | None) -> Outcome | None:
    """Export needs a trained checkpoint of the source's own: wait for it, or fail if it cannot come."""
    name = spec.source.training_run
    if spec.source.model_uri is not None:
        return step.fail("Exported", Reason.SOURCE_FAILED,
                         "spec.source.modelUri: exporting from a model URI is not supported yet; "
                         "use spec.source.trainingRun")
    if src is None:
        # The TrainingRun's creation, end or deletion wakes the release (the release-sources fan-out).
        return step.wait("Pending", Reason.WAITING_FOR_TRAINING, f"TrainingRun {name} not found", None)
    if src.failed:
        return step.fail("Exported", Reason.SOURCE_FAILED, f"TrainingRun {name} failed: {src.message}")
    if not src.ready or not src.checkpoint:
        return step.wait("Pending", Reason.WAITING_FOR_TRAINING, f"waiting for TrainingRun {name}", None)
    refusal = checkpoint_refusal(src.checkpoint, source_prefix(step.o.config, step.o.meta, spec, src))
    if refusal is not None:
        # A tampered status or MLflow run must never hand the export another tenant's files.
        return step.fail("Exported", Reason.UNTRUSTED_CHECKPOINT, f"TrainingRun {name}: {refusal}")
    return None


def decide(observed: Observed, now: datetime) -> Outcome:
    meta, old = observed.meta, observed.status
    checks = [_signing_supported, _registry_name_searchable]
    spec, status, stop = validate(meta, MODEL_RELEASE.spec, observed.spec, old, checks, now)
    if stop is not None:
        return stop
    failed = _failed_stages(status, meta.generation)
    if failed and failed[0][1] < meta.generation:
        return _retry(observed, status, failed, now)
    if failed:
        return Outcome(status=status)
    step = _Step(observed, status, now)
    src, cfg = observed.source, observed.config
    exported = is_true(status.conditions, "Exported")
    if not exported:
        waiting = _source_problem(step, spec, src)
        if waiting is not None:
            return waiting
        artifact = artifact_dir(cfg, meta)
        step.status = step.status.model_copy(update={"artifact_uri": f"file://{artifact}"})
    else:
        # Exported is final: the source TrainingRun may be gone (cleaned up) without harm.
        artifact = (status.artifact_uri or "").removeprefix("file://") or artifact_dir(cfg, meta)
    sourced = not exported and src is not None and src.checkpoint
    ctx = ReleaseContext(owner=_owner(meta), image=cfg.image, pool_label=cfg.pool_label,
                         checkpoint=posixpath.normpath(src.checkpoint) if sourced else "",
                         checkpoint_root=source_prefix(cfg, meta, spec, src) if sourced else "",
                         artifact_dir=artifact, artifact_pvc=cfg.artifact_pvc,
                         artifact_root=cfg.artifact_root)
    for stage in (lambda: is_true(step.status.conditions, "Exported") or _export(step, spec, ctx),
                  lambda: is_true(step.status.conditions, "Signed") or _sign(step, spec, ctx),
                  lambda: is_true(step.status.conditions, "Verified") or _verify(step),
                  lambda: is_true(step.status.conditions, "Registered") or _register(step, spec, artifact)):
        result = stage()
        if isinstance(result, Outcome):
            return result
    step.status = set_conditions(step.status, now, meta.generation,
                                 ("Progressing", False, Reason.RELEASE_READY, "ready for rollout"),
                                 ("Ready", True, Reason.RELEASE_READY,
                                  f"verified artifact {step.status.manifest_digest}"))
    if observed.rollout is None:
        return step._out("Ready", "exported, signed, verified and registered", None)
    return _roll_out(step, spec, observed.rollout)


ALIAS_MOVED = "AliasMoved"


def _roll_out(step: _Step, spec: ModelReleaseSpec, view: RolloutView) -> Outcome:
    meta, now = step.o.meta, step.now
    d = decide_rollout(spec.rollout, view.targets, step.status.rollout, now, view.observations,
                       view.intent, view.served, release=meta.name)
    served_by = sorted(view.served_by, key=lambda b: (b.namespace, b.name)) or None
    step.status = set_conditions(step.status.model_copy(update={"rollout": d.status, "served_by": served_by}),
                                 now, meta.generation, *d.conditions)
    requeue, reason = d.requeue_after, d.verdict.reason
    if d.verdict.phase is None:
        # Nothing rolls out: the release stays Ready and says why (with what tenancy refused).
        why = "; ".join((d.verdict.message, *view.refused))
        step.mark("Progressing", False, d.verdict.reason, why)
        if spec.rollout.selector is not None:
            # Likely a typo in the labels: said where a person looks first. The release stays
            # Ready, so a deployment that comes to match it later still gets the rollout.
            step.mark("Valid", False, Reason.SELECTOR_MATCHES_NOTHING,
                      f"spec.rollout.selector {describe(spec.rollout.selector)} matches no AgentDeployment "
                      f"of model line {spec.model_line} that may be a target: "
                      + ("; ".join(view.refused) or "the line has no AgentDeployment"))
        phase, reason = "Ready", Reason.RELEASE_READY
        message = f"exported, signed, verified and registered; {why}"
    else:
        phase, message = str(d.verdict.phase), d.verdict.message
        if d.verdict.phase == RolloutPhase.PROMOTED:
            requeue = _move_alias(step, spec, view)
    old = step.o.status
    step.status = step.status.model_copy(update={"phase": phase, "message": message})
    events = (*phase_event(old, step.status, reason, message), *d.events)
    others = tuple(ObjectEvent(API_VERSION, AGENT_DEPLOYMENT.kind, e.name, e.namespace,
                               e.event) for e in d.target_events)
    return Outcome(status=step.status, actions=tuple(step.actions), events=events,
                   object_events=others, requeue_after=requeue)


def _move_alias(step: _Step, spec: ModelReleaseSpec, view: RolloutView) -> float | None:
    """Once per promotion: a later release's promotion takes the alias on without this one
    taking it back, so only a condition not yet True asks for the move."""
    version, alias = step.status.registry_version, spec.registry.alias
    if is_true(step.status.conditions, ALIAS_MOVED) or not step.o.config.registry or version is None:
        return None
    name = spec.registry.model_name or spec.model_line
    if view.alias_version == version:
        step.mark(ALIAS_MOVED, True, Reason.ROLLOUT_PROMOTED, f"{name}@{alias} -> version {version}")
        return None
    step.actions.append(SetAlias(name, alias, version))
    step.mark(ALIAS_MOVED, False, Reason.ROLLOUT_PROMOTED, f"moving {name}@{alias} to version {version}")
    return POLL_SECONDS
