"""ModelRelease: gather the source checkpoint, Jobs, keys, verification and registry state, and
once verified the rollout's inputs (controllers/rollout_gather.py: targets, measurements);
carry out registry actions (register a version, move the alias). The signing key Secret is the
sign Job's to mount, never read here (the operator holds no Secret rights). Verification reads the
artifact directory, which the operator sees at the same path as the workloads (a shared volume
in a cluster, the host in dev)."""

from __future__ import annotations

import json
import logging
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from tugboat_workloads.verify import VerificationError, verify_artifact

from ..api.base import API_VERSION
from ..api.kinds import MODEL_RELEASE, TRAINING_RUN
from ..api.model_release import RolloutPhase
from ..builders.model_release import jobs_selector
from ..conditions import find, is_true
from ..kube.client import Kube
from ..reconcile import model_release as mr
from ..reconcile.outcome import Meta, Outcome, parse_spec
from ..reconcile.trust_key import key_problem
from ..tracking import Registry, TrackingUnavailable
from . import rollout_gather
from .engine import current_status
from .settings import Settings

log = logging.getLogger(__name__)
TRUST_CONFIGMAP = "tugboat-trust"


def _config(s: Settings) -> mr.Config:
    return mr.Config(image=s.workload_image, pool_label=s.pool_label, artifact_root=s.artifact_root,
                     artifact_pvc=getattr(s, "artifact_pvc", None), registry=bool(s.mlflow_tracking_uri))


def _source(kube: Kube, namespace: str, name: str | None) -> mr.SourceView | None:
    if not name:
        return None
    obj = kube.get_or_none(API_VERSION, TRAINING_RUN.kind, name, namespace)
    if obj is None:
        return None
    status = current_status(TRAINING_RUN, obj)
    trained = find(status.conditions, "Trained")
    failed = trained is not None and trained.status == "False"
    return mr.SourceView(ready=is_true(status.conditions, "Trained"), failed=failed,
                         checkpoint=status.checkpoint, message=status.message or "",
                         uid=obj["metadata"].get("uid", ""))


def _jobs(kube: Kube, meta: Meta) -> dict[str, mr.JobView]:
    out = {}
    for job in kube.list("batch/v1", "Job", meta.namespace,
                         label_selector=jobs_selector(meta.name)):
        conds = {c["type"]: c for c in (job.get("status") or {}).get("conditions") or []
                 if c.get("status") == "True"}
        role = job["metadata"]["labels"].get("tugboat.dev/workload", "")
        failed = conds.get("Failed")
        out[role] = mr.JobView(succeeded="Complete" in conds, failed=failed is not None,
                               message=(failed or {}).get("message", ""),
                               reason=(failed or {}).get("reason", ""))
    return out


def trusted_public_key(kube: Kube, s: Settings) -> str | None:
    cm = kube.get_or_none("v1", "ConfigMap", TRUST_CONFIGMAP, s.system_namespace)
    return ((cm or {}).get("data") or {}).get("public.pem")


def _verify(artifact: str, public_pem: str) -> mr.VerifyView | None:
    if not Path(artifact).is_dir():
        log.warning("artifact %s is not visible to the operator; mount the artifact store", artifact)
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as key:
        key.write(public_pem)
        key.flush()
        try:
            result = verify_artifact(artifact, key.name)
        except VerificationError as exc:
            return mr.VerifyView(False, str(exc.reason), str(exc))
    return mr.VerifyView(True, "Verified", f"{len(result.files)} files match the signed manifest",
                         result.manifest_digest, _graphs(Path(artifact), set(result.files)))


def _graphs(artifact: Path, files: set[str]) -> tuple:
    """The graphs the signed export report describes (read after the report's digest verified)."""
    try:
        report = json.loads((artifact / mr.EXPORT_REPORT).read_text())
    except (OSError, ValueError) as exc:
        log.warning("export report of %s unreadable: %s", artifact, exc)
        return ()
    return mr.graphs_from_report(report, files)


def _registry_version(s: Settings, spec: dict, meta: Meta) -> str | None:
    if not s.mlflow_tracking_uri:
        return None
    name = (spec.get("registry") or {}).get("modelName") or spec.get("modelLine", "")
    try:
        return Registry(s.mlflow_tracking_uri).find_version(name, "tugboat.dev/release-uid", meta.uid)
    except TrackingUnavailable as exc:
        log.warning("ModelRelease %s/%s: %s", meta.namespace, meta.name, exc)
        return None


def _alias_version(s: Settings, spec, meta: Meta) -> str | None:
    name = spec.registry.model_name or spec.model_line
    try:
        return Registry(s.mlflow_tracking_uri).alias_version(name, spec.registry.alias)
    except TrackingUnavailable as exc:
        log.warning("ModelRelease %s/%s: %s", meta.namespace, meta.name, exc)
        return None


def _rollout(kube: Kube, obj: dict, status, s: Settings, now: datetime) -> mr.RolloutView | None:
    """Gathered once the release is verified (the pass that makes it Ready starts the rollout)."""
    if not is_true(status.conditions, "Verified"):
        return None
    spec, _ = parse_spec(MODEL_RELEASE.spec, obj.get("spec") or {})
    if spec is None:
        return None  # decide reports the spec as invalid
    rollout = status.rollout
    alias = None
    if (rollout is not None and rollout.phase == RolloutPhase.PROMOTED and s.mlflow_tracking_uri
            and not is_true(status.conditions, mr.ALIAS_MOVED)):
        alias = _alias_version(s, spec, Meta.of(obj))
    return rollout_gather.gather(kube, obj, spec, rollout, s, now, alias)


def observe(kube: Kube, obj: dict, s: Settings, now: datetime | None = None) -> mr.Observed:
    meta, spec = Meta.of(obj), obj.get("spec") or {}
    status = current_status(MODEL_RELEASE, obj)
    public = trusted_public_key(kube, s)
    config = _config(s)
    verification = None
    problem = key_problem(public)
    if is_true(status.conditions, "Signed") and not is_true(status.conditions, "Verified") and public \
            and problem is None:
        verification = _verify(mr.artifact_dir(config, meta), public)
    registry = None
    if is_true(status.conditions, "Verified") and not is_true(status.conditions, "Registered"):
        registry = _registry_version(s, spec, meta)
    return mr.Observed(
        meta=meta, spec=spec, status=status,
        source=_source(kube, meta.namespace, (spec.get("source") or {}).get("trainingRun")),
        jobs=_jobs(kube, meta),
        verification=verification, trusted_key=public is not None, trust_problem=problem,
        registry_version=registry, config=config,
        rollout=_rollout(kube, obj, status, s, now or datetime.now(UTC)))


def act(outcome: Outcome, s: Settings) -> None:
    for action in outcome.actions:
        if isinstance(action, mr.RegisterModel) and s.mlflow_tracking_uri:
            try:
                Registry(s.mlflow_tracking_uri).register(action.name, Path(action.source), dict(action.tags))
            except TrackingUnavailable as exc:
                log.warning("registering %s failed (will retry): %s", action.name, exc)
        elif isinstance(action, mr.SetAlias) and s.mlflow_tracking_uri:
            try:
                Registry(s.mlflow_tracking_uri).set_alias(action.name, action.alias, action.version)
            except TrackingUnavailable as exc:
                log.warning("moving %s@%s failed (will retry): %s", action.name, action.alias, exc)
