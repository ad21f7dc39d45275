"""`python -m tugboat.dev.dataplane --kubeconfig K --state DIR [--ray-address auto|start|none]
[--mlflow-port N | --no-mlflow] [--prometheus-port N | --no-prometheus]
[--gateway-port N | --no-gateway]`: run the dev data plane until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from .plane import DataPlane


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tugboat.dev.dataplane", description=__doc__)
    p.add_argument("--kubeconfig", required=True, help="kubeconfig of the dev cluster")
    p.add_argument("--state", required=True, help="directory for services.json, endpoints.json, logs, mounts")
    p.add_argument("--ray-address", default="start", choices=("start", "auto", "none"),
                   help="start a private Ray head (default), reuse RAY_ADDRESS/a running one, or no Ray")
    p.add_argument("--mlflow-port", type=int, default=0, help="MLflow port on 127.0.0.1 (0: a free one)")
    p.add_argument("--no-mlflow", action="store_true", help="do not start an MLflow server")
    p.add_argument("--prometheus-port", type=int, default=0,
                   help="Prometheus port on 127.0.0.1, scraping the serving pods (0: a free one)")
    p.add_argument("--no-prometheus", action="store_true", help="do not start Prometheus")
    p.add_argument("--gateway-port", type=int, default=0,
                   help="dev gateway (nginx) port on 127.0.0.1 (0: a free one)")
    p.add_argument("--no-gateway", action="store_true", help="do not run the dev gateway")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    # Ray and the Kubernetes client are chatty at INFO; one line per action is ours to give.
    for noisy in ("ray", "urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    ray = None if args.ray_address == "none" else args.ray_address
    plane = DataPlane(args.kubeconfig, args.state, ray=ray,
                      mlflow_port=None if args.no_mlflow else args.mlflow_port,
                      prometheus_port=None if args.no_prometheus else args.prometheus_port,
                      gateway_port=None if args.no_gateway else args.gateway_port)
    try:
        plane.start()
    except Exception as exc:  # noqa: BLE001 - one clear line, not a traceback, for a CLI user
        logging.getLogger("tugboat.dev.dataplane").error("dataplane: could not start: %s", exc)
        return 1
    done.wait()
    plane.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
