"""Read training runs from an MLflow tracking server over its REST API (no mlflow package:
the operator image stays small), register release versions and move their alias. I/O only;
returns plain values."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
TIMEOUT = 5.0


class TrackingUnavailable(Exception):
    pass


class UnsafeFilterValue(TrackingUnavailable):
    """A value no MLflow search filter can carry exactly; asking anyway could match other objects."""


def filter_literal(value: str) -> str:
    """`value` as a search-filter string that matches exactly it.

    MLflow's filter parser (sqlparse) strips the quotes and undoes no escape, and a backslash
    escapes the closing quote: a value travels inside the quote kind it does not contain, and one
    with both kinds or a backslash is refused rather than let it close the string early.
    """
    for quote in ("'", '"'):
        if quote not in value and "\\" not in value and "\x00" not in value:
            return f"{quote}{value}{quote}"
    raise UnsafeFilterValue(f"{value!r} cannot be quoted in an MLflow search filter "
                            "(it holds both quote kinds or a backslash)")


def filter_key(key: str) -> str:
    """A tag key as a backquoted filter identifier (a backquote in it would end the identifier)."""
    if "`" in key or "\\" in key:
        raise UnsafeFilterValue(f"tag key {key!r} cannot be quoted in an MLflow search filter")
    return f"`{key}`"


@dataclass(frozen=True)
class Run:
    run_id: str
    status: str
    metrics: dict[str, float]
    metric_steps: dict[str, int]
    tags: dict[str, str]


class Tracking:
    def __init__(self, uri: str):
        self.uri = uri.rstrip("/")

    def _call(self, method: str, path: str, body: dict | None = None, query: dict | None = None,
              absent_when: str | None = None):
        """The answer as JSON; None when the object does not exist (404, or a 400 whose message
        contains `absent_when`: MLflow reports a missing alias as an invalid parameter)."""
        url = f"{self.uri}/api/2.0/mlflow/{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            with exc:
                detail = exc.read().decode(errors="replace")[:300]
            if exc.code == 400 and absent_when and absent_when in detail:
                return None
            raise TrackingUnavailable(f"MLflow {path}: HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise TrackingUnavailable(f"MLflow at {self.uri}: {exc}") from exc

    def experiment_id(self, name: str) -> str | None:
        out = self._call("GET", "experiments/get-by-name", query={"experiment_name": name})
        return (out or {}).get("experiment", {}).get("experiment_id")

    def find_run(self, experiment: str, tags: dict[str, str]) -> Run | None:
        """The newest run of `experiment` carrying all `tags`."""
        exp = self.experiment_id(experiment)
        if exp is None:
            return None
        query = " and ".join(f"tags.{filter_key(k)} = {filter_literal(v)}" for k, v in tags.items())
        out = self._call("POST", "runs/search", {
            "experiment_ids": [exp], "filter": query, "max_results": 1,
            "order_by": ["attributes.start_time DESC"]}) or {}
        runs = [_parse(raw) for raw in out.get("runs") or []]
        # The server's answer is checked too: only a run carrying exactly these tags is ours.
        return next((r for r in runs if all(r.tags.get(k) == v for k, v in tags.items())), None)


def _parse(raw: dict) -> Run:
    data = raw.get("data", {})
    metrics = {m["key"]: float(m["value"]) for m in data.get("metrics", [])}
    steps = {m["key"]: int(m.get("step", 0)) for m in data.get("metrics", [])}
    tags = {t["key"]: t["value"] for t in data.get("tags", [])}
    info = raw.get("info", {})
    return Run(info.get("run_id", ""), info.get("status", ""), metrics, steps, tags)



class Registry(Tracking):
    """The MLflow Model Registry part of the same REST API."""

    EXPERIMENT = "tugboat-releases"

    def find_version(self, name: str, tag: str, value: str) -> str | None:
        out = self._call("GET", "model-versions/search",
                         query={"filter": f"name={filter_literal(name)}", "max_results": 200}) or {}
        for mv in out.get("model_versions") or []:
            tags = {t["key"]: t["value"] for t in mv.get("tags") or []}
            if mv.get("name") == name and tags.get(tag) == value:
                return str(mv["version"])
        return None

    def register(self, name: str, artifact_dir: Path, tags: dict[str, str]) -> str:
        """Upload the verified artifact as a run's `model` directory and register it as a version.

        The registry only accepts sources inside a run's artifacts, so the files travel with it:
        `models:/NAME/VERSION` then downloads exactly what was signed.
        """
        exp = self.experiment_id(self.EXPERIMENT) or self._call(
            "POST", "experiments/create", {"name": self.EXPERIMENT})["experiment_id"]
        run = self._call("POST", "runs/create", {
            "experiment_id": exp, "run_name": tags.get("tugboat.dev/release", name),
            "tags": [{"key": k, "value": v} for k, v in tags.items()]})["run"]["info"]
        source = f"{run['artifact_uri']}/model"
        for path in sorted(p for p in artifact_dir.rglob("*") if p.is_file()):
            self._upload(source, path.relative_to(artifact_dir).as_posix(), path)
        self._call("POST", "runs/update", {"run_id": run["run_id"], "status": "FINISHED"})
        if self._call("GET", "registered-models/get", query={"name": name}) is None:
            self._call("POST", "registered-models/create", {"name": name})
        out = self._call("POST", "model-versions/create", {
            "name": name, "source": source, "run_id": run["run_id"],
            "tags": [{"key": k, "value": v} for k, v in tags.items()]}) or {}
        return str(out.get("model_version", {}).get("version", ""))

    def alias_version(self, name: str, alias: str) -> str | None:
        """The version `name@alias` points at; None when the alias (or the model) does not exist."""
        out = self._call("GET", "registered-models/alias", query={"name": name, "alias": alias},
                         absent_when=f"alias {alias} not found")
        version = ((out or {}).get("model_version") or {}).get("version")
        return str(version) if version is not None else None

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point `name@alias` at `version` (moving it from wherever it pointed)."""
        self._call("POST", "registered-models/alias", {"name": name, "alias": alias, "version": version})

    def _upload(self, source: str, relative: str, path: Path) -> None:
        prefix = "mlflow-artifacts:/"
        if not source.startswith(prefix):
            raise TrackingUnavailable(f"MLflow server does not proxy artifacts ({source})")
        url = f"{self.uri}/api/2.0/mlflow-artifacts/artifacts/{source[len(prefix):]}/{relative}"
        with open(path, "rb") as fh:
            req = urllib.request.Request(url, data=fh, method="PUT",
                                         headers={"Content-Length": str(path.stat().st_size)})
            try:
                urllib.request.urlopen(req, timeout=60).close()
            except (urllib.error.URLError, OSError) as exc:
                raise TrackingUnavailable(f"uploading {relative} to MLflow: {exc}") from exc
