"""`kubectl tugboat`: the kubectl plugin (installed as `kubectl-tugboat`).

  kubectl tugboat lineage [-n NS | -A]     TrainingRun -> ModelRelease -> AgentDeployment tree
  kubectl tugboat status KIND NAME [-n NS] phase, message and every condition of one object;
                                           for a ModelRelease also its rollout, per target
  kubectl tugboat promote [--full] | abort | retry | pause | resume mr NAME [-n NS]
                                           ask the operator to act on a release's rollout
  kubectl tugboat report KIND/NAME -o FILE [-n NS]
                                           the HTML report of a TrainingRun or ModelRelease

The only write is the rollout intent annotation (rollout/intents.py) on a ModelRelease: never a
spec field (GitOps sees no drift) and never a status (the operator's alone).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import typer

from .api.base import API_VERSION
from .api.kinds import AGENT_DEPLOYMENT, KINDS, MODEL_RELEASE, TRAINING_RUN
from .kube.errors import KubeError, NotFound
from .lineage import render_conditions, render_lineage
from .rollout.intents import IntentVerb, intent_annotation

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Tugboat objects as a person wants to see them, and rollout control.")
_ALIASES = {alias: k for k in KINDS for alias in (k.kind.lower(), k.plural, k.short_name)}


def _kube(kubeconfig: str | None):
    from .kube.client import Kube

    return Kube.connect(kubeconfig)


def _namespace(namespace: str | None, all_namespaces: bool) -> str | None:
    return None if all_namespaces else (namespace or "default")


@app.command()
def lineage(
    namespace: str = typer.Option(None, "--namespace", "-n"),
    all_namespaces: bool = typer.Option(False, "--all-namespaces", "-A"),
    kubeconfig: str = typer.Option(None, envvar="KUBECONFIG"),
) -> None:
    """Show each TrainingRun with the releases made from it and the agents serving them."""
    ns = _namespace(namespace, all_namespaces)
    try:
        kube = _kube(kubeconfig)
        runs = kube.list(API_VERSION, TRAINING_RUN.kind, ns)
        releases = kube.list(API_VERSION, MODEL_RELEASE.kind, ns)
        # Agents live in tenant namespaces: serve the releases in view from anywhere.
        names = {r["metadata"]["name"] for r in releases}
        agents = [a for a in kube.list(API_VERSION, AGENT_DEPLOYMENT.kind)
                  if (a.get("metadata") or {}).get("namespace") == ns or ns is None
                  or (a.get("status") or {}).get("release") in names]
    except KubeError as exc:
        typer.echo(f"kubectl tugboat: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(render_lineage(runs, releases, agents))


@app.command()
def status(
    kind: str = typer.Argument(..., help="trainingrun|tr, modelrelease|mr, agentdeployment|agd, tenant|tn"),
    name: str = typer.Argument(...),
    namespace: str = typer.Option(None, "--namespace", "-n"),
    kubeconfig: str = typer.Option(None, envvar="KUBECONFIG"),
) -> None:
    """Phase, message and conditions (type, status, reason, message) of one object."""
    k = _ALIASES.get(kind.lower())
    if k is None:
        typer.echo(f"kubectl tugboat: unknown kind {kind!r}; one of {', '.join(sorted(_ALIASES))}", err=True)
        raise typer.Exit(2)
    ns = (namespace or "default") if k.namespaced else None
    try:
        obj = _kube(kubeconfig).get(API_VERSION, k.kind, name, ns)
    except NotFound:
        typer.echo(f"kubectl tugboat: {k.kind} {name} not found", err=True)
        raise typer.Exit(1) from None
    except KubeError as exc:
        typer.echo(f"kubectl tugboat: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(render_conditions(k.kind, obj))
    rollout = (obj.get("status") or {}).get("rollout")
    if k is MODEL_RELEASE and rollout:
        typer.echo(render_rollout(rollout))


def _value(x) -> str:
    return "-" if x is None else f"{x:.4g}" if isinstance(x, float) else str(x)


def render_rollout(rollout: dict) -> str:
    """Per target: wave, stable release, weight, step, state; then every check's last measurement."""
    rows = [f"Rollout  {rollout.get('phase') or '-'}  {rollout.get('message') or ''}".rstrip()]
    exposure = rollout.get("exposure") or {}
    rows.append(f"  canary served {_value(exposure.get('requests'))} requests, "
                f"{_value(exposure.get('tokens'))} tokens")
    if breach := rollout.get("breach"):
        rows.append(f"  breach: {breach.get('reason')}: {breach.get('message')}")
    rows.append(f"  {'TARGET':<32} {'WAVE':<5} {'STABLE':<20} {'WEIGHT':<7} {'STEP':<5} {'STATE':<13} "
                "MESSAGE")
    for t in rollout.get("targets") or []:
        rows.append(f"  {t['namespace'] + '/' + t['name']:<32} {t.get('wave', 0):<5} "
                    f"{t.get('stableRelease') or '-':<20} {str(t.get('weight', 0)) + '%':<7} "
                    f"{t.get('step', 0):<5} {t.get('state', ''):<13} {t.get('message', '')}")
        for c in t.get("checks") or []:
            m = c.get("last")
            if not m:
                continue
            rows.append(f"    {m.get('check')} ({m.get('metric')}): {m.get('verdict')} value "
                        f"{_value(m.get('value'))} threshold {_value(m.get('threshold'))} "
                        f"({m.get('direction')}) at {m.get('time')}; passes {c.get('passes', 0)}, "
                        f"failures {c.get('failures', 0)}: {m.get('message', '')}")
            rows.append(f"      query: {m.get('query')}")
    return "\n".join(rows)


def _intent(verb: IntentVerb, kind: str, name: str, namespace: str | None, kubeconfig: str | None) -> None:
    if _ALIASES.get(kind.lower()) is not MODEL_RELEASE:
        typer.echo(f"kubectl tugboat: {verb} acts on a ModelRelease (mr), not {kind!r}", err=True)
        raise typer.Exit(2)
    ns = namespace or "default"
    # A fresh token makes this request a new one, however often the same verb was asked.
    body = {"metadata": {"annotations": intent_annotation(verb, uuid.uuid4().hex[:12])}}
    try:
        _kube(kubeconfig).patch(API_VERSION, MODEL_RELEASE.kind, name, ns, body)
    except NotFound:
        typer.echo(f"kubectl tugboat: ModelRelease {name} not found", err=True)
        raise typer.Exit(1) from None
    except KubeError as exc:
        typer.echo(f"kubectl tugboat: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"ModelRelease/{name}: {verb} requested")


_KIND = typer.Argument(..., help="mr (modelrelease)")
_NAME = typer.Argument(...)
_NS = typer.Option(None, "--namespace", "-n")
_KUBECONFIG = typer.Option(None, envvar="KUBECONFIG")


@app.command()
def promote(kind: str = _KIND, name: str = _NAME, full: bool = typer.Option(
        False, "--full", help="Skip every remaining step and analysis: 100% everywhere"),
        namespace: str = _NS, kubeconfig: str = _KUBECONFIG) -> None:
    """End the current step's pause (its analysis must still pass), or with --full finish now."""
    _intent(IntentVerb.PROMOTE_FULL if full else IntentVerb.PROMOTE, kind, name, namespace, kubeconfig)


@app.command()
def abort(kind: str = _KIND, name: str = _NAME, namespace: str = _NS, kubeconfig: str = _KUBECONFIG) -> None:
    """Roll back everywhere the release went, as a breach would."""
    _intent(IntentVerb.ABORT, kind, name, namespace, kubeconfig)


@app.command()
def retry(kind: str = _KIND, name: str = _NAME, namespace: str = _NS, kubeconfig: str = _KUBECONFIG) -> None:
    """After a rollback: start again from the first step of the first wave."""
    _intent(IntentVerb.RETRY, kind, name, namespace, kubeconfig)


@app.command()
def pause(kind: str = _KIND, name: str = _NAME, namespace: str = _NS, kubeconfig: str = _KUBECONFIG) -> None:
    """No step ends and no wave starts until resume; analysis (and rollback) goes on."""
    _intent(IntentVerb.PAUSE, kind, name, namespace, kubeconfig)


@app.command()
def resume(kind: str = _KIND, name: str = _NAME, namespace: str = _NS, kubeconfig: str = _KUBECONFIG) -> None:
    """Undo a pause."""
    _intent(IntentVerb.RESUME, kind, name, namespace, kubeconfig)


@app.command()
def report(
    target: str = typer.Argument(..., help="trainingrun/NAME or modelrelease/NAME (tr/, mr/ too)"),
    namespace: str = _NS,
    output: Path = typer.Option(..., "--output", "-o", help="The HTML file to write"),
    kubeconfig: str = _KUBECONFIG,
    mlflow_uri: str = typer.Option(None, envvar="TUGBOAT_MLFLOW_URI", help="MLflow tracking server"),
    prometheus_url: str = typer.Option(None, envvar="TUGBOAT_PROMETHEUS_URL", help="Prometheus HTTP API"),
) -> None:
    """Write the self-contained HTML report that `tugboat report` writes (the same command)."""
    from . import cli

    cli.report(target, namespace or "default", output, kubeconfig, mlflow_uri, prometheus_url)


def main() -> None:
    app(prog_name="kubectl tugboat")
