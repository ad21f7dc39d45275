"""Command-line flags of the serving runtime, each also settable as TUGBOAT_<FLAG> in the env.

Decides flag names, defaults and which are required; a flag on the command line wins over its
environment variable. Raises `SettingsError` naming the flag and its variable. Must not read
files or open sockets: startup does that with the resolved settings.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

TRACKS = ("stable", "canary")
GRAPHS = ("fp32", "fp16", "int8")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"", "0", "false", "no", "off"}


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class ServeSettings:
    artifact: str
    public_key: str
    guardrails: str | None
    host: str
    port: int
    release: str
    track: str
    tenant: str
    agent_deployment: str
    fallback_artifact: str | None = None
    audit_log: str | None = None
    audit_key_file: str | None = None
    api_keys_file: str | None = None
    no_guardrails: bool = False
    inference_workers: int = 1
    budget_store: str | None = None
    graph: str = "fp32"
    graph_fallback: bool = False
    # Dev-only fault injection (see _DEV_FLAGS): off unless the process is started with it.
    dev_inject_error_rate: float = 0.0
    dev_inject_latency_ms: int = 0


# flag -> (help, required); env var is TUGBOAT_ + the flag upper-cased with '-' -> '_'.
_FLAGS = {
    "artifact": ("signed artifact directory (model.onnx, manifest.json, model.sig)", True),
    "public-key": ("PEM public key the artifact's signature must verify with", True),
    "guardrails": ("guardrails JSON file (required unless --no-guardrails)", False),
    "host": ("address to bind (default 127.0.0.1)", False),
    "port": ("TCP port (default 8080)", False),
    "release": ("release name, a metrics label", True),
    "track": ("stable or canary, a metrics label", True),
    "tenant": ("tenant this deployment serves", True),
    "agent-deployment": ("AgentDeployment name, a metrics label", True),
    "fallback-artifact": ("signed artifact of the simpler fallback model", False),
    "audit-log": ("append audit JSON lines here (default: stdout)", False),
    "audit-key-file": ("the tenant's audit HMAC key (a mounted Secret, at least 32 bytes); when "
                       "absent or missing, a random per-process key is used and "
                       "tugboat_audit_key_ephemeral is 1", False),
    "api-keys-file": ("JSON of the tenant's API keys (sha256 and permission level each; a mounted "
                      "Secret); without it every request is a 401", False),
    "budget-store": ("redis:// URL of the tenant's shared token budget counter; without it each "
                     "process keeps its own windows", False),
    "inference-workers": ("threads running ONNX Runtime (default 1)", False),
    "graph": ("graph of the artifact to serve: fp32 (default), fp16 or int8; a reduced-precision "
              "graph must pass the artifact's numerics probe on this CPU", False),
}

# Dev only, for tests of canary analysis: faults a process is started with (flag or env var),
# never anything a request can ask for. Off by default.
_DEV_FLAGS = {
    "dev-inject-error-rate": "DEV ONLY: answer this fraction (0-1) of model requests with HTTP 500",
    "dev-inject-latency-ms": "DEV ONLY: delay every model request by this many milliseconds",
}


def env_var(flag: str) -> str:
    return "TUGBOAT_" + flag.upper().replace("-", "_")


def resolve_settings(argv: Sequence[str], environ: Mapping[str, str]) -> ServeSettings:
    args = _parser().parse_args(argv)
    values = {}
    for flag, (_, required) in _FLAGS.items():
        value = _given(args, environ, flag)
        if value is None and required:
            raise SettingsError(f"--{flag} (or {env_var(flag)}) is required")
        values[flag.replace("-", "_")] = value
    values["no_guardrails"] = args.no_guardrails or _env_bool(environ, "no-guardrails")
    values["graph_fallback"] = args.graph_fallback or _env_bool(environ, "graph-fallback")
    values["graph"] = values["graph"] or "fp32"
    if values["graph"] not in GRAPHS:
        raise SettingsError(f"--graph must be one of {', '.join(GRAPHS)}, got {values['graph']!r}")
    if values["guardrails"] is None and not values["no_guardrails"]:
        raise SettingsError(f"--guardrails (or {env_var('guardrails')}) is required "
                            "unless --no-guardrails")
    if values["track"] not in TRACKS:
        raise SettingsError(f"--track must be one of {', '.join(TRACKS)}, got {values['track']!r}")
    values["host"] = values["host"] or "127.0.0.1"
    values["port"] = _int(values["port"] or "8080", "port", 1, 65535)
    values["inference_workers"] = _int(values["inference_workers"] or "1", "inference-workers", 1, 64)
    return ServeSettings(**values, **_dev_faults(args, environ))


def _given(args: argparse.Namespace, environ: Mapping[str, str], flag: str) -> str | None:
    value = getattr(args, flag.replace("-", "_"))
    return value if value is not None else environ.get(env_var(flag)) or None


def _dev_faults(args: argparse.Namespace, environ: Mapping[str, str]) -> dict:
    rate = _given(args, environ, "dev-inject-error-rate") or "0"
    latency = _given(args, environ, "dev-inject-latency-ms") or "0"
    return {"dev_inject_error_rate": _float(rate, "dev-inject-error-rate", 0.0, 1.0),
            "dev_inject_latency_ms": _int(latency, "dev-inject-latency-ms", 0, 60_000)}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tugboat_workloads.serve",
        description="Serve a signed ONNX MoE model with guardrails and Prometheus metrics. "
                    "Every flag can also be set as TUGBOAT_<FLAG> (e.g. TUGBOAT_PUBLIC_KEY).")
    for flag, (help_text, _) in _FLAGS.items():
        parser.add_argument(f"--{flag}", default=None, help=help_text)
    parser.add_argument("--no-guardrails", action="store_true",
                        help="switch every guardrail and the audit log off (benchmark baseline)")
    parser.add_argument("--graph-fallback", action="store_true",
                        help="serve the fp32 graph when --graph's fails the numerics probe here")
    for flag, help_text in _DEV_FLAGS.items():
        parser.add_argument(f"--{flag}", default=None, help=help_text)
    return parser


def _env_bool(environ: Mapping[str, str], flag: str) -> bool:
    raw = environ.get(env_var(flag), "").strip().lower()
    if raw not in _TRUE | _FALSE:
        raise SettingsError(f"{env_var(flag)} must be true or false, got {raw!r}")
    return raw in _TRUE


def _int(raw: str, flag: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"--{flag} (or {env_var(flag)}) must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"--{flag} (or {env_var(flag)}) must be from {low} to {high}, got {value}")
    return value


def _float(raw: str, flag: str, low: float, high: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"--{flag} (or {env_var(flag)}) must be a number, got {raw!r}") from None
    if not low <= value <= high:  # also refuses nan
        raise SettingsError(f"--{flag} (or {env_var(flag)}) must be from {low} to {high}, got {value}")
    return value
