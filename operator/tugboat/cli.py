"""`tugboat`: run the operator, print CRDs, verify artifacts, and drive the local dev cluster."""

from __future__ import annotations

import logging
import random
import sys
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
dev = typer.Typer(no_args_is_help=True, help="A local Kubernetes control plane (kwok) for demo and tests.")
app.add_typer(dev, name="dev")


@app.command()
def run(
    kubeconfig: str = typer.Option(None, envvar="KUBECONFIG", help="Kubeconfig (else in-cluster)"),
    priority: int = typer.Option(None, help="Peering priority; default random so replicas differ"),
    standalone: bool = typer.Option(False, help="No peering (a single replica)"),
    metrics_port: int = typer.Option(8080, help="Prometheus metrics port"),
    health_port: int = typer.Option(8081, help="Liveness port (/healthz)"),
    bind: str = typer.Option("127.0.0.1", help="Address of the metrics and health endpoints"),
    peering_lifetime: int = typer.Option(30, help="Seconds before a dead leader's claim expires"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run the operator (kopf) against the cluster."""
    from .operator_main import main

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    code = main(kubeconfig=kubeconfig,
                priority=random.randint(1, 32767) if priority is None else priority,
                standalone=standalone, metrics=(bind, metrics_port), health=(bind, health_port),
                peering_lifetime=peering_lifetime)
    raise typer.Exit(code)


@app.command()
def crds(
    write: Path = typer.Option(None, help="Write the CRD files into this directory"),
    check: Path = typer.Option(None, help="Exit 1 if the files in this directory differ"),
) -> None:
    """Print the CRDs generated from the API models (or write/check them)."""
    from .api.crd import crd_files

    files = crd_files()
    if check is not None:
        stale = [n for n, text in files.items()
                 if not (check / n).exists() or (check / n).read_text() != text]
        if stale:
            typer.echo(f"CRDs out of date: {', '.join(stale)}; run `tugboat crds --write {check}`",
                       err=True)
            raise typer.Exit(1)
        typer.echo("CRDs up to date")
        return
    if write is not None:
        write.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (write / name).write_text(text)
        typer.echo(f"wrote {len(files)} CRDs to {write}")
        return
    typer.echo("---\n".join(files.values()), nl=False)


@dev.command("up")
def dev_up(name: str = typer.Option("tugboat", help="Cluster name")) -> None:
    """Start the local cluster, install CRDs, create the CPU and GPU node pools."""
    from .dev.cluster import DevCluster

    cluster = DevCluster(name)
    cluster.up(log=lambda m: typer.echo(m, err=True))
    typer.echo(f"export KUBECONFIG={cluster.kubeconfig}")


@dev.command("down")
def dev_down(name: str = typer.Option("tugboat")) -> None:
    """Stop the local cluster and delete its state."""
    from .dev.cluster import DevCluster

    DevCluster(name).down()


@dev.command("status")
def dev_status(name: str = typer.Option("tugboat")) -> None:
    """Is the local cluster running? Prints its kubeconfig path."""
    from .dev.cluster import DevCluster

    cluster = DevCluster(name)
    if not cluster.running():
        typer.echo(f"cluster {name}: not running")
        raise typer.Exit(1)
    typer.echo(f"cluster {name}: running\nexport KUBECONFIG={cluster.kubeconfig}")


def main() -> None:  # pragma: no cover - console script entry
    sys.exit(app())
