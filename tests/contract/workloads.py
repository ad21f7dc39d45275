"""Feed what a builder wrote for a workload to that workload's own parser, as its pod would see it.

`invocation` reads `python -m <module> ARGS` off a container (or a RayJob's entrypoint); `mount`
writes the ConfigMaps a container mounts under a scratch root and points the arguments at the
copies; `parse` dispatches on the module to its real argument parser and config loader. Parsing
only: no training, export, signing or serving starts. A refusal raises the workload's own error.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import onnx

from tugboat_workloads.export.options import build_parser as export_parser
from tugboat_workloads.export.options import options_from_args
from tugboat_workloads.serve.server import startup_config
from tugboat_workloads.serve.success_detector import build_scorer
from tugboat_workloads.sign.__main__ import parse_args as sign_args
from tugboat_workloads.train.config import load_train_config
from tugboat_workloads.train.entrypoint import build_parser as train_parser


@dataclass(frozen=True)
class Invocation:
    module: str
    argv: tuple[str, ...]


def _python_m(words: list[str]) -> Invocation:
    assert words[:2] == ["python", "-m"], f"not a `python -m` workload: {words}"
    return Invocation(words[2], tuple(words[3:]))


def invocation(container: dict) -> Invocation:
    return _python_m([*container["command"], *container.get("args", [])])


def ray_job_invocation(ray_job: dict) -> Invocation:
    return _python_m(shlex.split(ray_job["spec"]["entrypoint"]))


def mount(inv: Invocation, pod_spec: dict, container: dict, config_maps: dict[str, dict],
          root: Path) -> Invocation:
    """The ConfigMap volumes of `container` written under `root`; arguments rebased onto them.
    Other volumes (Secrets, the artifact store) stay as paths: parsers must not open those."""
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    argv = list(inv.argv)
    for m in container.get("volumeMounts", []):
        source = volumes[m["name"]].get("configMap")
        if source is None:
            continue
        local = root / m["mountPath"].lstrip("/")
        local.mkdir(parents=True, exist_ok=True)
        for file, text in config_maps[source["name"]]["data"].items():
            (local / file).write_text(text)
        argv = [str(local) + a[len(m["mountPath"]):] if a.startswith(m["mountPath"] + "/") else a
                for a in argv]
    return Invocation(inv.module, tuple(argv))


def _train(argv: list[str]):
    return load_train_config(train_parser().parse_args(argv).config)


def _export(argv: list[str]):
    return options_from_args(export_parser().parse_args(argv), onnx.defs.onnx_opset_version())


def _serve(argv: list[str]):
    settings, config = startup_config(argv, {})
    # The detector is built once the artifact (and so its vocabulary) is loaded: any size will do.
    build_scorer(config.success_detector, vocab_size=64)
    return settings, config


CONSUMERS = {"tugboat_workloads.train": _train, "tugboat_workloads.export": _export,
             "tugboat_workloads.sign": sign_args, "tugboat_workloads.serve": _serve}


def parse(inv: Invocation):
    """The workload's parsed view of its invocation; argparse's exit becomes an AssertionError."""
    try:
        return CONSUMERS[inv.module](list(inv.argv))
    except SystemExit as exc:
        raise AssertionError(f"{inv.module} refused its arguments {inv.argv} (exit {exc.code})") from None
