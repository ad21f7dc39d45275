"""Bounded traffic through the dev gateway: the task's prompts at a set rate, counted per release/track.

Decides what is sent (arithmetic-progression prompts from the training task's own builtin
dataset, so a good model answers them; the serving runtime's POST /v1/generate body and the
caller's headers), how fast (requests start on a fixed schedule of `rate` per second, a few in flight at
once, until `count` requests or `duration` seconds, whichever ends first: never unbounded), and
what is counted: per (release, track) as the runtime's JSON answer names them, the requests,
HTTP errors, answers matching the progression, mean success score and latency percentiles; per
HTTP status and per upstream (the gateway's X-Tugboat-Upstream header). Usable as a library
(`run_traffic`) and as `tugboat dev traffic`.
Must not send to anything but a loopback URL (NotLoopback otherwise).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tugboat_workloads.data import load_tokens
from tugboat_workloads.task import decode_tokens, expected_continuation

from .gateway.nginx_conf import UPSTREAM_HEADER
from .loopback import require_loopback_url

UNKNOWN = "-"


@dataclass(frozen=True)
class TrafficPlan:
    url: str                          # the gateway, e.g. http://127.0.0.1:8088
    rate: float = 10.0                # requests started per second
    duration: float | None = 10.0     # seconds; None: until `count`
    count: int | None = None          # requests; None: until `duration`
    path: str = "/v1/generate"
    host: str | None = None           # Host header, for routes with hostnames
    headers: Mapping[str, str] = field(default_factory=dict)   # Authorization, X-Permission-Level
    concurrency: int = 4
    prompt_tokens: int = 4
    max_tokens: int = 3
    vocab_size: int = 64
    seed: int = 1
    timeout: float = 10.0

    def __post_init__(self):
        require_loopback_url(self.url, "traffic")
        if self.rate <= 0 or self.concurrency < 1:
            raise ValueError("rate must be > 0 and concurrency >= 1")
        if self.duration is None and self.count is None:
            raise ValueError("set a duration, a count or both: traffic is always bounded")


@dataclass(frozen=True)
class Served:
    """One request's outcome; `at` is seconds since the run started."""

    at: float
    status: int               # HTTP status; 0 when no HTTP answer came
    release: str
    track: str
    upstream: str
    latency: float
    correct: bool
    score: float | None


def prompts(plan: TrafficPlan) -> Iterator[tuple[str, str]]:
    """(prompt, expected completion), cycling through the task's builtin dataset."""
    table = load_tokens(f"builtin://arithmetic?samples=256&seed={plan.seed}", plan.vocab_size,
                        plan.prompt_tokens)
    rows = table.to_lists()
    while True:
        for row in rows:
            head = row[:plan.prompt_tokens]
            expected = expected_continuation(head, plan.max_tokens, plan.vocab_size) or []
            yield decode_tokens(head), decode_tokens(expected)


def send_one(plan: TrafficPlan, prompt: str, expected: str, started: float) -> Served:
    body = json.dumps({"prompt": prompt, "maxTokens": plan.max_tokens}).encode()
    headers = {"Content-Type": "application/json", **plan.headers}
    if plan.host:
        headers["Host"] = plan.host
    request = urllib.request.Request(plan.url.rstrip("/") + plan.path, data=body, method="POST",
                                     headers=headers)
    t0 = time.monotonic()
    status, doc, upstream = 0, {}, UNKNOWN
    try:
        with urllib.request.urlopen(request, timeout=plan.timeout) as resp:
            status, upstream = resp.status, resp.headers.get(UPSTREAM_HEADER) or UNKNOWN
            doc = _json(resp.read())
    except urllib.error.HTTPError as err:
        status, upstream = err.code, err.headers.get(UPSTREAM_HEADER) or UNKNOWN
        doc = _json(err.read())
    except (urllib.error.URLError, OSError):
        pass
    score = doc.get("score")
    return Served(at=t0 - started, status=status, release=str(doc.get("release") or UNKNOWN),
                  track=str(doc.get("track") or UNKNOWN), upstream=upstream,
                  latency=time.monotonic() - t0, correct=status == 200 and doc.get("completion") == expected,
                  score=float(score) if isinstance(score, (int, float)) else None)


def _json(raw: bytes) -> dict:
    try:
        doc = json.loads(raw)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


@dataclass
class TrafficReport:
    served: list[Served]
    elapsed: float

    def by_track(self) -> dict[tuple[str, str], list[Served]]:
        out: dict[tuple[str, str], list[Served]] = {}
        for s in self.served:
            out.setdefault((s.release, s.track), []).append(s)
        return dict(sorted(out.items()))

    def share(self, release: str, track: str | None = None) -> float:
        """The fraction of all requests answered by `release` (and `track`, if given)."""
        hits = sum(1 for s in self.served if s.release == release and track in (None, s.track))
        return hits / len(self.served) if self.served else 0.0

    def to_json(self) -> dict:
        tracks = []
        for (release, track), items in self.by_track().items():
            latencies = sorted(s.latency for s in items)
            scores = [s.score for s in items if s.score is not None]
            tracks.append({
                "release": release, "track": track, "requests": len(items),
                "share": round(len(items) / len(self.served), 4),
                "errors": sum(1 for s in items if s.status != 200),
                "correct": sum(1 for s in items if s.correct),
                "meanScore": round(sum(scores) / len(scores), 4) if scores else None,
                "latencyP50": round(_quantile(latencies, 0.5), 4),
                "latencyP95": round(_quantile(latencies, 0.95), 4)})
        return {"requests": len(self.served), "elapsedSeconds": round(self.elapsed, 3),
                "byTrack": tracks,
                "byStatus": {str(k): v for k, v in sorted(Counter(s.status for s in self.served).items())},
                "byUpstream": dict(sorted(Counter(s.upstream for s in self.served).items()))}

    def summary(self) -> str:
        doc = self.to_json()
        lines = [f"{doc['requests']} requests in {doc['elapsedSeconds']:.1f}s; "
                 f"status {', '.join(f'{k}: {v}' for k, v in doc['byStatus'].items())}",
                 f"{'RELEASE':<24} {'TRACK':<8} {'REQ':>5} {'SHARE':>6} {'ERR':>4} {'OK':>5} "
                 f"{'SCORE':>5} {'P50':>7} {'P95':>7}"]
        for t in doc["byTrack"]:
            score = f"{t['meanScore']:.2f}" if t["meanScore"] is not None else "-"
            lines.append(f"{t['release']:<24} {t['track']:<8} {t['requests']:>5} {t['share']:>6.1%} "
                         f"{t['errors']:>4} {t['correct']:>5} {score:>5} {t['latencyP50']:>6.3f}s "
                         f"{t['latencyP95']:>6.3f}s")
        return "\n".join(lines)


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def run_traffic(plan: TrafficPlan, on_served: Callable[[Served], None] | None = None,
                stop: threading.Event | None = None) -> TrafficReport:
    """Send `plan`'s traffic and wait for every answer; `on_served` sees each as it arrives.
    `stop` ends it early (the plan's bounds hold regardless)."""
    stop = stop or threading.Event()  # never set: the plan's bounds end it
    served: list[Served] = []
    lock = threading.Lock()
    in_flight = threading.Semaphore(plan.concurrency * 2)  # the schedule never runs far ahead

    def one(prompt: str, expected: str) -> None:
        try:
            result = send_one(plan, prompt, expected, started)
            with lock:
                served.append(result)
            if on_served:
                on_served(result)
        finally:
            in_flight.release()

    started = time.monotonic()
    source = prompts(plan)
    with ThreadPoolExecutor(max_workers=plan.concurrency, thread_name_prefix="traffic") as pool:
        for i in range(plan.count if plan.count is not None else 1 << 62):
            due = started + i / plan.rate
            if plan.duration is not None and due - started >= plan.duration:
                break
            if stop.wait(max(0.0, due - time.monotonic())):
                break
            in_flight.acquire()
            pool.submit(one, *next(source))
    return TrafficReport(sorted(served, key=lambda s: s.at), time.monotonic() - started)
