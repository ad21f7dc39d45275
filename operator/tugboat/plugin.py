"""`kubectl tugboat`: the kubectl plugin (installed as `kubectl-tugboat`).

  kubectl tugboat lineage [-n NS | -A]     TrainingRun -> ModelRelease -> AgentDeployment tree
  kubectl tugboat status KIND NAME [-n NS] phase, message and every condition of one object

Reads only; it never writes a spec or a status.
"""

from __future__ import annotations

import typer

from .api.base import API_VERSION
from .api.kinds import AGENT_DEPLOYMENT, KINDS, MODEL_RELEASE, TRAINING_RUN
from .kube.errors import KubeError, NotFound
from .lineage import render_conditions, render_lineage

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Tugboat objects as a person wants to see them (read-only).")
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


def main() -> None:
    app(prog_name="kubectl tugboat")
