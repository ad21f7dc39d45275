"""The demo's canary part (dev only, run by hack/demo.sh): traffic, a rollout follower, a request.

  demo_rollout.py traffic --url URL --seconds N TENANT=HOST=API_KEY_FILE ...
      bounded traffic through the dev gateway to each tenant's hostname at --rate requests/s;
      SIGTERM ends it early; then each tenant's report (requests per release and track)
  demo_rollout.py follow --release NAME -n NS AGENT_NS ...
      one line per change of the release: its phase until the rollout starts, then wave, step,
      weight and state per target and the last value and verdict of each check of the wave in
      progress; after Promoted/RolledBack, until every agent's stable track says where it ended
  demo_rollout.py ask --url URL --host HOST --tenant T --api-key-file F
      one POST /v1/generate through the gateway, with the answer and the upstream that served it

Reads the cluster through the operator's own client; sends to loopback URLs only (TrafficPlan
refuses anything else). Exit status of `follow`: 0 Promoted, 1 RolledBack, 2 timed out.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import urllib.error
import urllib.request

from tugboat.api.base import API_VERSION
from tugboat.dev.gateway.nginx_conf import UPSTREAM_HEADER
from tugboat.dev.loopback import require_loopback_url
from tugboat.dev.traffic import TrafficPlan, run_traffic
from tugboat.kube.client import Kube
from tugboat.kube.errors import KubeError

PROMPT = "3 5 7 9"
DONE = ("Promoted", "RolledBack")
VERDICT = {"Pass": "pass", "Fail": "FAIL", "Inconclusive": "inconclusive", "Error": "ERROR"}


def traffic(args) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    reports: dict[str, object] = {}
    threads = []
    for spec in args.tenants:
        tenant, host, key_file = spec.split("=")
        plan = TrafficPlan(url=args.url, rate=args.rate, duration=args.seconds, host=host,
                           headers={"Authorization": f"Bearer {_key(key_file)}"},
                           concurrency=3, timeout=15)
        thread = threading.Thread(target=lambda t=tenant, p=plan: reports.__setitem__(
            t, run_traffic(p, stop=stop)), name=f"traffic-{tenant}")
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    for spec in args.tenants:  # in the order given, whichever finished first
        tenant = spec.split("=")[0]
        print(f"{tenant}: {reports[tenant].summary()}")
    return 0


def _ago(t0: float) -> str:
    return f"+{time.monotonic() - t0:4.0f}s"


def _value(x) -> str:
    return "-" if x is None else f"{x:.3g}" if isinstance(x, float) else str(x)


def _checks(plan: dict) -> str:
    parts = []
    for c in plan.get("checks") or []:
        m = c.get("last") or {}
        if m:
            parts.append(f"{c['name']} {_value(m.get('value'))} {VERDICT.get(m.get('verdict'), '?')}")
    return ", ".join(parts)


def rollout_line(rollout: dict, steps: int) -> str:
    """wave, then per target: step, weight, state; the checks of the wave in progress."""
    head = f"{rollout.get('phase') or '-'}  wave {_value(rollout.get('wave'))}"
    targets = []
    for p in sorted(rollout.get("targets") or [], key=lambda p: (p.get("wave", 0), p["namespace"])):
        step = p.get("step", 0)
        where = "done" if step >= steps else f"step {step + 1}/{steps}"
        text = f"{p['namespace']}: {where} {p.get('weight', 0)}% {p.get('state', '')}"
        if p.get("wave") == rollout.get("wave") and p.get("weight", 0) > 0 \
                and p.get("state") not in DONE and (checks := _checks(p)):
            text += f" [{checks}]"
        targets.append(text)
    return "  |  ".join([head, *targets])


def _get(kube: Kube, kind: str, name: str, namespace: str) -> dict:
    try:
        return kube.get(API_VERSION, kind, name, namespace)
    except KubeError:  # a hiccup of a busy API server: look again on the next tick
        return {}


def follow(args) -> int:
    kube, t0, last = Kube.connect(None), time.monotonic(), None
    deadline = t0 + args.timeout
    phase = None
    while time.monotonic() < deadline:
        mr = _get(kube, "ModelRelease", args.release, args.namespace)
        status, steps = mr.get("status") or {}, len(((mr.get("spec") or {}).get("rollout") or {})
                                                      .get("steps") or [])
        rollout = status.get("rollout") or {}
        if rollout.get("targets"):
            line = rollout_line(rollout, steps)
        else:
            line = f"{status.get('phase') or 'Pending'}  {status.get('message') or ''}".rstrip()
        if line != last:
            print(f"  {_ago(t0)}  {line}", flush=True)
            last = line
        phase = rollout.get("phase")
        if phase in DONE and rollout.get("targets"):
            break
        time.sleep(1)
    else:
        print(f"  {_ago(t0)}  gave up after {args.timeout:.0f}s", flush=True)
        return 2
    if breach := rollout.get("breach"):
        print(f"  breach: {breach.get('reason')}: {breach.get('message')}")
    exposure = rollout.get("exposure") or {}
    print(f"  the canary served {_value(exposure.get('requests'))} requests, "
          f"{_value(exposure.get('tokens'))} tokens during the rollout")
    _follow_agents(kube, args, t0)
    _alias(kube, args, phase == "Promoted")
    return 0 if phase == "Promoted" else 1


def _alias(kube: Kube, args, promoted: bool) -> None:
    """Where the registry alias is: it moves on promotion only, a moment after the phase does."""
    deadline, cond = time.monotonic() + 30, {}
    while time.monotonic() < deadline:
        status = _get(kube, "ModelRelease", args.release, args.namespace).get("status") or {}
        cond = next((c for c in status.get("conditions") or [] if c.get("type") == "AliasMoved"), {})
        if not promoted or cond.get("status") == "True":
            break
        time.sleep(1)
    if cond:
        print(f"  AliasMoved {cond.get('status')}: {cond.get('message')}")


def _follow_agents(kube: Kube, args, t0: float) -> None:
    """Until every agent's stable track serves what the rollout ended on and no canary is left."""
    last: dict[str, str] = {}
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        settled = True
        for ns in args.agents:
            st = _get(kube, "AgentDeployment", args.agent, ns).get("status") or {}
            line = (f"stable {st.get('stableRelease') or '-'}, canary {st.get('canaryRelease') or '-'} "
                    f"{st.get('canaryWeight') or 0}%, {st.get('phase') or '-'}")
            if last.get(ns) != line:
                print(f"  {_ago(t0)}  AgentDeployment {ns}/{args.agent}: {line}", flush=True)
                last[ns] = line
            settled &= bool(st.get("stableRelease")) and not st.get("canaryRelease")
        if settled:
            return
        time.sleep(1)


def _key(path: str) -> str:
    """A key `tugboat dev api-key` printed into a file (kept out of argv and the process list)."""
    with open(path) as f:
        return f.read().strip()


def ask(args) -> int:
    require_loopback_url(args.url, "demo")
    body = json.dumps({"prompt": PROMPT, "maxTokens": 3}).encode()
    headers = {"Content-Type": "application/json", "Host": args.host,
               "Authorization": f"Bearer {_key(args.api_key_file)}"}
    print(f"POST {args.url}/v1/generate (Host: {args.host}, {args.tenant}'s API key) "
          f"{{\"prompt\": \"{PROMPT}\", \"maxTokens\": 3}}")
    request = urllib.request.Request(f"{args.url}/v1/generate", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            code, upstream, text = resp.status, resp.headers.get(UPSTREAM_HEADER), resp.read().decode()
    except urllib.error.HTTPError as err:
        code, upstream, text = err.code, err.headers.get(UPSTREAM_HEADER), err.read().decode()
    print(f"HTTP {code} from {upstream or '-'}\n{text.strip()}")
    return 0 if code == 200 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("traffic")
    t.add_argument("--url", required=True)
    t.add_argument("--seconds", type=float, required=True)
    t.add_argument("--rate", type=float, default=4.0)
    t.add_argument("tenants", nargs="+", help="TENANT=HOST=API_KEY_FILE")
    f = sub.add_parser("follow")
    f.add_argument("--release", required=True)
    f.add_argument("-n", "--namespace", required=True)
    f.add_argument("--agent", default="arith-agent")
    f.add_argument("--timeout", type=float, default=1200)
    f.add_argument("agents", nargs="+", help="namespaces of the AgentDeployments")
    a = sub.add_parser("ask")
    a.add_argument("--url", required=True)
    a.add_argument("--host", required=True)
    a.add_argument("--tenant", required=True)
    a.add_argument("--api-key-file", required=True)
    args = parser.parse_args()
    return {"traffic": traffic, "follow": follow, "ask": ask}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
