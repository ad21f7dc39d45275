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
    mlflow_uri: str = typer.Option(None, envvar="TUGBOAT_MLFLOW_URI", help="MLflow tracking server"),
    artifact_root: str = typer.Option(None, envvar="TUGBOAT_ARTIFACT_ROOT",
                                      help="Checkpoints and artifacts (a path every workload pod sees)"),
    dataset_roots: str = typer.Option(
        None, envvar="TUGBOAT_DATASET_ROOTS",
        help="Comma-separated directories file:// datasets may come from (default <artifact-root>/datasets)"),
    workload_image: str = typer.Option(None, envvar="TUGBOAT_WORKLOAD_IMAGE"),
    pool_label: str = typer.Option(None, help="Node label naming a node pool"),
    head_pool: str = typer.Option(None, help="Pool for Ray heads and CPU Jobs"),
    system_namespace: str = typer.Option(None, envvar="TUGBOAT_SYSTEM_NAMESPACE"),
    serving_image: str = typer.Option(None, envvar="TUGBOAT_SERVING_IMAGE",
                                      help="Image of AgentDeployment serving pods"),
    artifact_pvc: str = typer.Option(None, envvar="TUGBOAT_ARTIFACT_PVC",
                                     help="PVC holding the artifact root, mounted by serving pods"),
    gateway_namespace: str = typer.Option(None, help="Namespace whose pods may reach tenant endpoints"),
    monitoring_namespace: str = typer.Option(None, help="Namespace of the Prometheus scraping them"),
    reserved_namespaces: str = typer.Option(
        None, envvar="TUGBOAT_RESERVED_NAMESPACES",
        help="Comma-separated namespaces (or patterns like 'istio-*') no Tenant may list, besides "
             "default, kube-* and the system, gateway, monitoring and release namespaces"),
    budget_store: str = typer.Option(None, envvar="TUGBOAT_BUDGET_STORE",
                                     help="redis:// URL of the shared token budget counter, passed "
                                          "to serving pods (default: per-process budgets)"),
    prometheus_url: str = typer.Option(None, envvar="TUGBOAT_PROMETHEUS_URL",
                                       help="Prometheus HTTP API the canary analysis queries"),
    release_namespaces: str = typer.Option(
        None, envvar="TUGBOAT_RELEASE_NAMESPACES",
        help="Comma-separated namespaces whose ModelReleases may roll out to tenant namespaces"),
    cleanup_timeout: float = typer.Option(
        None, min=1, help="Seconds a deleted object waits for its cleanup (its RayJobs) before it "
                          "goes anyway, with a Warning naming what was left"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run the operator (kopf) against the cluster."""
    from dataclasses import replace

    from .controllers.settings import Settings
    from .operator_main import main

    given = {"mlflow_tracking_uri": mlflow_uri, "artifact_root": artifact_root,
             "dataset_roots": _names(dataset_roots),
             "workload_image": workload_image, "pool_label": pool_label, "head_pool": head_pool,
             "system_namespace": system_namespace, "serving_image": serving_image,
             "artifact_pvc": artifact_pvc, "gateway_namespace": gateway_namespace,
             "monitoring_namespace": monitoring_namespace, "prometheus_url": prometheus_url,
             "budget_store": budget_store,
             "release_namespaces": _names(release_namespaces),
             "reserved_namespaces": _names(reserved_namespaces), "cleanup_timeout": cleanup_timeout}
    settings = replace(Settings(), **{k: v for k, v in given.items() if v is not None})
    if prometheus_url is not None:
        from .analysis.prometheus import Prometheus

        try:
            Prometheus(prometheus_url)  # refuse a malformed URL now, not at the first analysis
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--prometheus-url") from None
    if budget_store is not None:
        from .builders.agent_deployment import check_budget_store

        try:
            check_budget_store(budget_store)  # a pod must not be the first to find it malformed
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--budget-store") from None

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    code = main(kubeconfig=kubeconfig,
                priority=random.randint(1, 32767) if priority is None else priority,
                standalone=standalone, metrics=(bind, metrics_port), health=(bind, health_port),
                peering_lifetime=peering_lifetime, settings=settings)
    raise typer.Exit(code)


def _names(text: str | None) -> tuple[str, ...] | None:
    """A comma-separated option as a tuple; None when not given (the setting keeps its default)."""
    return None if text is None else tuple(n.strip() for n in text.split(",") if n.strip())


@app.command()
def crds(
    write: list[Path] = typer.Option(None, help="Write the CRD files into this directory"),
    check: list[Path] = typer.Option(None, help="Exit 1 if the files in this directory differ"),
) -> None:
    """Print the CRDs generated from the API models (or write/check them)."""
    from .api.crd import crd_files

    files = crd_files()
    for directory in check or ():
        stale = [n for n, text in files.items()
                 if not (directory / n).exists() or (directory / n).read_text() != text]
        if stale:
            typer.echo(f"CRDs in {directory} out of date: {', '.join(stale)}; run `make crds`", err=True)
            raise typer.Exit(1)
    for directory in write or ():
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (directory / name).write_text(text)
        typer.echo(f"wrote {len(files)} CRDs to {directory}")
    if check or write:
        return
    typer.echo("---\n".join(files.values()), nl=False)


@app.command("chart-policies")
def chart_policies(
    write: bool = typer.Option(False, help="Write the chart's generated templates"),
    check: bool = typer.Option(False, help="Exit 1 if a generated template differs from its source"),
) -> None:
    """The Helm chart's generated templates: admission policies (from policies/) and the
    tenants' ClusterRole (from the tenant builder)."""
    from .chart import chart_templates
    from .dev.tools import repo_root

    chart = repo_root() / "charts" / "tugboat"
    for rel, text in chart_templates(repo_root()).items():
        target = chart / rel
        if check and (not target.exists() or target.read_text() != text):
            typer.echo(f"{target} is out of date; run `make crds`", err=True)
            raise typer.Exit(1)
        if write:
            target.write_text(text)
            typer.echo(f"wrote {target}")
        if not (check or write):
            typer.echo(text, nl=False)


@app.command()
def verify(
    artifact: Path = typer.Argument(..., help="Artifact directory (manifest.json, model.sig, files)"),
    public_key: Path = typer.Option(..., help="Trusted EC public key (PEM)"),
) -> None:
    """Check every digest of a signed artifact and its signature; exit 1 on any tampering."""
    from tugboat_workloads.verify import VerificationError, verify_artifact

    try:
        result = verify_artifact(artifact, public_key)
    except VerificationError as exc:
        typer.echo(f"NOT VERIFIED {artifact}: {exc.reason}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"verified {artifact}: {len(result.files)} files, manifest sha256 {result.manifest_digest}")


@app.command()
def report(
    target: str = typer.Argument(..., help="trainingrun/NAME or modelrelease/NAME (tr/, mr/ too)"),
    namespace: str = typer.Option("default", "--namespace", "-n"),
    output: Path = typer.Option(..., "--output", "-o", help="The HTML file to write"),
    kubeconfig: str = typer.Option(None, envvar="KUBECONFIG"),
    mlflow_uri: str = typer.Option(None, envvar="TUGBOAT_MLFLOW_URI", help="MLflow tracking server"),
    prometheus_url: str = typer.Option(None, envvar="TUGBOAT_PROMETHEUS_URL", help="Prometheus HTTP API"),
) -> None:
    """Write one self-contained HTML file (plots inline, opens with no network) about a TrainingRun
    or a ModelRelease: training curves, router health, export parity, signature, rollout."""
    import time

    from .kube.client import Kube
    from .kube.errors import KubeError
    from .report.gather import gather_release, gather_training
    from .report.render import render_release, render_training

    kind, _, name = target.partition("/")
    kind = {"trainingrun": "tr", "trainingruns": "tr", "modelrelease": "mr", "modelreleases": "mr"}.get(
        kind.lower(), kind.lower())
    if kind not in ("tr", "mr") or not name:
        raise typer.BadParameter(f"expected trainingrun/NAME or modelrelease/NAME, got {target!r}",
                                 param_hint="TARGET")
    try:
        kube = Kube.connect(kubeconfig)
        if kind == "tr":
            page = render_training(gather_training(kube, namespace, name, mlflow_uri))
        else:
            page = render_release(gather_release(kube, namespace, name, mlflow_uri, prometheus_url,
                                                 time.time()))
    except KubeError as exc:
        typer.echo(f"tugboat report: {exc}", err=True)
        raise typer.Exit(1) from None
    output.write_text(page)
    typer.echo(f"wrote {output} ({len(page) // 1024} KiB)")


@dev.command("up")
def dev_up(name: str = typer.Option("tugboat", help="Cluster name")) -> None:
    """Start the local cluster, install CRDs, create the CPU and GPU node pools."""
    import subprocess

    from .dev.cluster import DevCluster
    from .dev.progress import Steps
    from .dev.tools import ToolsMissing

    cluster = DevCluster(name)
    steps = Steps(lambda m: typer.echo(m, err=True), total=cluster.up_step_count + 1)
    try:
        cluster.up(steps=steps)
        with steps.step("signing key", "Secret ml-platform/tugboat-signing-key, "
                        "trust ConfigMap tugboat-system/tugboat-trust"):
            keys = cluster.trust()
            steps.note(f"key pair in {keys}")
    except ToolsMissing:  # the failed step's line names the missing binary
        typer.echo("next: run `make tools` (builds the Kubernetes tools once, 5-15 min), then "
                   "`tugboat dev up` again", err=True)
        raise typer.Exit(1) from None
    except (RuntimeError, subprocess.SubprocessError) as exc:
        typer.echo(f"tugboat dev up failed: {str(exc).strip()[-2000:]}\n"
                   f"next: look at the control plane's logs in {cluster.logs_dir}\n"
                   f"next: start afresh with `tugboat dev down --name {name}` then "
                   f"`tugboat dev up --name {name}` (deletes that cluster's objects)", err=True)
        raise typer.Exit(1) from None
    typer.echo(steps.summary(f"cluster {name}"), err=True)
    typer.echo(f"[dev up] next: export KUBECONFIG={cluster.kubeconfig}; kubectl get nodes; then "
               f"`tugboat run` starts the operator (or `make demo` runs everything)", err=True)
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


def _dataplane_state(state: Path | None) -> Path:
    """The data plane's state directory: the one given, else the demo's."""
    from .dev.tools import cache_dir

    return state or cache_dir() / "demo" / "dataplane"


@dev.command("traffic")
def dev_traffic(
    url: str = typer.Option(None, help="Gateway URL (default: the demo data plane's gateway.json)"),
    state: Path = typer.Option(None, help="Data plane state directory holding gateway/gateway.json"),
    rate: float = typer.Option(10.0, help="Requests started per second"),
    duration: float = typer.Option(10.0, help="Seconds to send for (0: until --count)"),
    count: int = typer.Option(None, help="Stop after this many requests"),
    host: str = typer.Option(None, help="Host header (for HTTPRoutes with hostnames)"),
    api_key: str = typer.Option(None, envvar="TUGBOAT_API_KEY",
                                help="The tenant's API key (`tugboat dev api-key` issues one)"),
    permission_level: str = typer.Option(None, help="X-Permission-Level header"),
    max_tokens: int = typer.Option(3, help="maxTokens of each request"),
    seed: int = typer.Option(1, help="Which of the task's prompt sets"),
    concurrency: int = typer.Option(4, help="Requests in flight at most"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
) -> None:
    """Send the task's prompts through the dev gateway, bounded; count what each release/track served."""
    import json

    from .dev.traffic import TrafficPlan, run_traffic

    if url is None:
        found = _dataplane_state(state) / "gateway" / "gateway.json"
        if not found.is_file():
            typer.echo(f"no --url and no {found}: is the dev data plane running with its gateway?", err=True)
            raise typer.Exit(2)
        url = json.loads(found.read_text())["url"]
    headers = {k: v for k, v in (("Authorization", api_key and f"Bearer {api_key}"),
                                 ("X-Permission-Level", permission_level)) if v}
    try:
        plan = TrafficPlan(url=url, rate=rate, duration=duration or None, count=count, host=host,
                           headers=headers, max_tokens=max_tokens, seed=seed, concurrency=concurrency)
    except ValueError as exc:  # NotLoopback among them
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    report = run_traffic(plan)
    typer.echo(json.dumps(report.to_json(), indent=2) if as_json else report.summary())


@dev.command("api-key")
def dev_api_key(
    namespace: str = typer.Option(..., "--namespace", "-n", help="The tenant namespace serving it"),
    tenant: str = typer.Option(..., help="The Tenant the key belongs to"),
    name: str = typer.Option("dev", help="The key's name in audit lines (replaces one of that name)"),
    permission_level: str = typer.Option("Standard", help="The highest level the key may ask for"),
    kubeconfig: str = typer.Option(None, envvar="KUBECONFIG", help="Kubeconfig of the cluster"),
) -> None:
    """Issue a tenant API key into its namespace's keys Secret and print it (only its hash is stored)."""
    from .dev.api_keys import issue_api_key
    from .kube.client import Kube

    typer.echo(issue_api_key(Kube.connect(kubeconfig), namespace, tenant, name, permission_level))


@dev.command("faults")
def dev_faults(
    release: str = typer.Option(None, help="Release whose serving pods get the faults"),
    namespace: str = typer.Option(None, help="Only its pods in this namespace (default: every one)"),
    error_rate: float = typer.Option(0.0, help="Fraction (0-1) of model requests answered with HTTP 500"),
    latency_ms: int = typer.Option(0, help="Milliseconds added to every model request"),
    clear: bool = typer.Option(False, "--clear", help="Remove every rule"),
    state: Path = typer.Option(None, help="Data plane state directory (default: the demo's)"),
) -> None:
    """DEV ONLY: serving pods of a release started from now on inject errors or latency."""
    from .dev.dataplane.faults import FaultRule, add_rule, read_rules, write_rules

    state = _dataplane_state(state)
    if clear:
        write_rules(state, [])
    elif release:
        try:
            add_rule(state, FaultRule(release, namespace, error_rate, latency_ms))
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
    for rule in read_rules(state):
        typer.echo(f"{rule.release} in {rule.namespace or 'every namespace'}: error rate "
                   f"{rule.error_rate}, added latency {rule.latency_ms} ms (pods started from now on)")


def main() -> None:  # pragma: no cover - console script entry
    sys.exit(app())
