"""Read what a report shows: the object (and its source TrainingRun) from the API server, metric
history from MLflow's REST API, series from Prometheus' range API. I/O only; every source that is
absent or failing becomes a `Missing` with the reason, never an exception."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime

from ..analysis.prometheus import Prometheus
from ..analysis.queries import escape_label_value
from ..api.base import API_VERSION
from ..api.kinds import MODEL_RELEASE, TRAINING_RUN
from ..reasons import Reason
from .model import AnalysisSeries, Decision, Missing, ReleaseData, Series, TrainingData

TIMEOUT = 10.0
MAX_POINTS = 300  # per range query: enough to see a rollout, small enough for the file


class SourceError(Exception):
    pass


def _json(request: urllib.request.Request) -> dict:
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        with err:
            raise SourceError(f"{request.full_url.split('?')[0]} answered HTTP {err.code}: "
                              f"{err.read().decode(errors='replace')[:200]}") from None
    except (OSError, ValueError) as err:
        raise SourceError(f"{request.full_url.split('?')[0]}: {err}") from None


def mlflow_history(uri: str | None, run_id: str | None) -> dict[str, dict[int, float]] | Missing:
    if not uri:
        return Missing("no MLflow tracking URI given (--mlflow-uri or TUGBOAT_MLFLOW_URI)")
    if not run_id:
        return Missing("the TrainingRun has no MLflow run yet (status.mlflowRunId is unset)")
    base = uri.rstrip("/") + "/api/2.0/mlflow"
    try:
        run = _json(urllib.request.Request(f"{base}/runs/get?" + urllib.parse.urlencode({"run_id": run_id})))
        keys = sorted({m["key"] for m in (run.get("run") or {}).get("data", {}).get("metrics", [])})
        history = {}
        for key in keys:
            query = urllib.parse.urlencode({"run_id": run_id, "metric_key": key, "max_results": 25000})
            points = _json(urllib.request.Request(f"{base}/metrics/get-history?{query}")).get("metrics", [])
            history[key] = {int(p.get("step", 0)): float(p["value"])
                            for p in sorted(points, key=lambda p: int(p.get("timestamp", 0)))}
    except SourceError as exc:
        return Missing(f"MLflow run {run_id}: {exc}")
    if not keys:
        return Missing(f"MLflow run {run_id} has logged no metrics")
    return history


def query_range(url: str, expr: str, start: float, end: float) -> list[tuple[dict, Series]]:
    """Each series of `expr` over [start, end] with its labels; SourceError on any failure."""
    prometheus = Prometheus(url)
    step = max((end - start) / MAX_POINTS, 1.0)
    form = urllib.parse.urlencode({"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                   "step": f"{step:.3f}"}).encode()
    answer = _json(urllib.request.Request(f"{prometheus.url}/api/v1/query_range", data=form, method="POST"))
    if answer.get("status") != "success" or (answer.get("data") or {}).get("resultType") != "matrix":
        raise SourceError(f"Prometheus refused {expr!r}: {answer.get('error', answer.get('status'))}")
    out = []
    for item in answer["data"]["result"]:
        values = [(float(t), float(v)) for t, v in item.get("values", [])]
        out.append((item.get("metric", {}),
                    Series("", tuple(t for t, _ in values), tuple(v for _, v in values))))
    return out


def gather_training(kube, namespace: str, name: str, mlflow_uri: str | None) -> TrainingData:
    obj = kube.get(API_VERSION, TRAINING_RUN.kind, name, namespace)
    slo = (obj.get("spec") or {}).get("routerHealth") or {}
    status = obj.get("status") or {}
    return TrainingData(name, namespace, status, float(slo.get("maxImbalance", 1.6)),
                        float(slo.get("minEntropy", 1.1)),
                        mlflow_history(mlflow_uri, status.get("mlflowRunId")))


def _time(text: str | None) -> float | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None


_PROMOTED_REASONS = (Reason.ROLLOUT_PROMOTED, Reason.FIRST_RELEASE)


def decision_of(status: dict) -> Decision | None:
    """Where the rollout ended, from its status: the breach (or RolledBack condition) time, or the
    time Progressing turned False for a promotion (Ready is often True since before the rollout)."""
    rollout = status.get("rollout") or {}
    conds = {c.get("type"): c for c in status.get("conditions") or []}
    if rollout.get("phase") == "RolledBack":
        breach = rollout.get("breach") or {}
        when = _time(breach.get("time")) or _time((conds.get("RolledBack") or {}).get("lastTransitionTime"))
        return Decision("RolledBack", when, breach.get("message", "")) if when else None
    promoted = conds.get("Progressing") or {}
    if rollout.get("phase") == "Promoted" and promoted.get("reason") in _PROMOTED_REASONS:
        when = _time(promoted.get("lastTransitionTime"))
        return Decision("Promoted", when, promoted.get("message", "")) if when else None
    return None


def _weights(url: str, name: str, tenants: list[str], start: float, end: float) -> list[Series]:
    """Per tenant: percent of its requests this release served (the canary's effective weight)."""
    matcher = "|".join(escape_label_value(t) for t in tenants)
    rate = f'sum by (tenant) (rate(tugboat_requests_total{{tenant=~"{matcher}"{{x}}}}[1m]))'
    ours = rate.replace("{x}", f',release="{escape_label_value(name)}"')
    expr = f"100 * ({ours} or {rate.replace('{x}', '')} * 0) / {rate.replace('{x}', '')}"
    return [Series(labels.get("tenant", "?"), s.x, s.y) for labels, s in query_range(url, expr, start, end)]


def gather_release(kube, namespace: str, name: str, mlflow_uri: str | None, prometheus_url: str | None,
                   now: float) -> ReleaseData:
    obj = kube.get(API_VERSION, MODEL_RELEASE.kind, name, namespace)
    status = obj.get("status") or {}
    targets = (status.get("rollout") or {}).get("targets") or []
    decision = decision_of(status)
    start = _time(obj["metadata"].get("creationTimestamp")) or now - 3600
    end = min(now, decision.time + 120) if decision else now  # a little after the end: the settling
    if not prometheus_url:
        weights = analysis = Missing("no Prometheus URL given (--prometheus-url or TUGBOAT_PROMETHEUS_URL)")
    elif not targets:
        weights = analysis = Missing("the release has no rollout targets yet")
    else:
        try:
            weights = _weights(prometheus_url, name, sorted({t["tenant"] for t in targets}), start, end)
        except SourceError as exc:
            weights = Missing(str(exc))
        analysis = [_check(prometheus_url, t, c, start, end) for t in targets for c in t.get("checks") or []]
    source = (obj.get("spec") or {}).get("source") or {}
    training = (gather_training(kube, namespace, source["trainingRun"], mlflow_uri)
                if source.get("trainingRun") else None)
    return ReleaseData(name, namespace, status, weights, analysis, decision, training)


def _check(url: str, target: dict, check: dict, start: float, end: float) -> AnalysisSeries:
    last = check.get("last") or {}
    where = f"{target.get('namespace')}/{target.get('name')}"
    if not last.get("query"):
        return AnalysisSeries(where, check.get("name", "?"), float(last.get("threshold") or 0),
                              last.get("direction", ""), Missing("not measured yet"))
    try:
        found = query_range(url, last["query"], start, end)
        series: Series | Missing = found[0][1] if found else Missing("Prometheus returned no samples")
    except SourceError as exc:
        series = Missing(str(exc))
    return AnalysisSeries(where, check["name"], float(last["threshold"]), last.get("direction", ""), series)
