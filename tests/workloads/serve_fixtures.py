"""Fixtures for the serving tests and benchmark: real signed ONNX artifacts and server processes.

`build_signed_artifacts` trains a tiny MoE for a few seconds (single process, plain torch), saves
an untrained twin, exports both with the real `tugboat_workloads.export` CLI and signs them with
the real `tugboat_workloads.sign` CLI. `ServeProcess` runs `python -m tugboat_workloads.serve`
on 127.0.0.1 and waits for /readyz. Import the fixtures from a test module; the artifacts are
built once per process however many modules import them.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

PYTHON = sys.executable
# Small enough to learn progressions mod 16 to ~99% next-token accuracy in ~300 steps (a few
# seconds on 2 cores); vocabulary 64 needs a larger model and many more steps.
TINY_MODEL = {"layers": 2, "dModel": 64, "heads": 2, "experts": 4, "topK": 2, "dFF": 128,
              "vocabSize": 16, "seqLen": 16}
TRAIN_STEPS = 300
# The caller every test server knows (tenant acme, the servers' tenant); its keys file holds the
# hash only, as a tenant's Secret would.
TEST_KEY = "tbk_acme_test-caller-0123456789abcdefghijklmnopqrstuvwxyz"
TEST_CALLER = {"name": "test-caller", "permissionLevel": "Elevated"}


@dataclass(frozen=True)
class SignedArtifacts:
    trained: Path      # learned the task: confident and correct
    untrained: Path    # freshly initialised: near-uniform, low confidence
    public_key: Path
    other_public_key: Path  # a key that did not sign anything
    train_accuracy: float


def train_tiny_checkpoint(out: Path, steps: int, seed: int = 0) -> float:
    """Train (or with steps=0 just initialise) the tiny model; save a checkpoint; return the
    next-token accuracy on the last training batch where the stride is known (3rd token on)."""
    import torch

    # One thread: on 2 cores shared with other work, 2 torch threads ran 10x slower (131 s vs 12 s).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(out, steps, seed)
    finally:
        torch.set_num_threads(threads)


def _train(out: Path, steps: int, seed: int) -> float:
    import torch
    import torch.nn.functional as F

    from tugboat_workloads.data import load_tokens
    from tugboat_workloads.moe import MoEConfig, MoETransformer, save_checkpoint

    torch.manual_seed(seed)
    config = MoEConfig.from_dict(TINY_MODEL)
    model = MoETransformer(config)
    rows = torch.tensor(load_tokens("builtin://arithmetic?samples=1024&seed=0",
                                    config.vocab_size, config.seq_len).to_lists())
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    accuracy = 0.0
    for _ in range(steps):
        batch = rows[torch.randint(0, rows.shape[0], (32,))]
        out_ = model(batch[:, :-1])
        loss = F.cross_entropy(out_.logits.reshape(-1, config.vocab_size), batch[:, 1:].reshape(-1))
        optimiser.zero_grad()
        (loss + out_.aux_loss).backward()
        optimiser.step()
        accuracy = (out_.logits.argmax(-1)[:, 2:] == batch[:, 3:]).float().mean().item()
    model.eval()
    save_checkpoint(out, model, step=steps, metrics={"accuracy": accuracy})
    return accuracy


def export_and_sign(checkpoints: dict[Path, Path], private_key: Path) -> None:
    """Export each checkpoint -> artifact directory (concurrently) with the real CLI, then sign."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # see train_tiny_checkpoint
    exports = {out: subprocess.Popen(
        [PYTHON, "-m", "tugboat_workloads.export", "--checkpoint", str(ckpt), "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        for ckpt, out in checkpoints.items()}
    for out, proc in exports.items():
        output = proc.communicate(timeout=600)[0]
        _check(f"export to {out}", proc.returncode, output)
    for out in checkpoints.values():
        done = subprocess.run(
            [PYTHON, "-m", "tugboat_workloads.sign", "--artifact", str(out),
             "--private-key", str(private_key)],
            capture_output=True, text=True, timeout=300)
        _check(f"sign {out}", done.returncode, done.stderr)


def _check(what: str, code: int, output: str) -> None:
    if code != 0:
        raise RuntimeError(f"{what} failed ({code}):\n{output[-3000:]}")


def build_signed_artifacts(root: Path) -> SignedArtifacts:
    from tugboat_workloads.sign.keys import generate_keypair

    keys = root / "keys"
    keys.mkdir(parents=True)
    generate_keypair(keys / "signing.pem", keys / "signing.pub.pem")
    generate_keypair(keys / "other.pem", keys / "other.pub.pem")
    accuracy = train_tiny_checkpoint(root / "ckpt-trained", TRAIN_STEPS)
    train_tiny_checkpoint(root / "ckpt-untrained", 0, seed=1)
    export_and_sign({root / f"ckpt-{name}": root / f"artifact-{name}" for name in ("trained", "untrained")},
                    keys / "signing.pem")
    return SignedArtifacts(root / "artifact-trained", root / "artifact-untrained",
                           keys / "signing.pub.pem", keys / "other.pub.pem", accuracy)


@functools.cache
def _artifacts_once(root: str) -> SignedArtifacts:
    return build_signed_artifacts(Path(root))


@pytest.fixture(scope="session")
def signed_artifacts(tmp_path_factory) -> SignedArtifacts:
    # functools.cache: several test modules import this fixture; build the artifacts once.
    return _artifacts_once(str(tmp_path_factory.getbasetemp() / "serve-artifacts"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServeProcess:
    """`python -m tugboat_workloads.serve` as a child process bound to 127.0.0.1 (behind `launcher`,
    e.g. an emulator of another CPU, when given)."""

    def __init__(self, workdir: Path, artifact: Path, public_key: Path, guardrails: dict | None,
                 *, extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None,
                 track: str = "stable", via_env: bool = False, launcher: tuple[str, ...] = (),
                 api_keys: tuple[str, ...] = (TEST_KEY,)):
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.track = track
        self.audit_path = workdir / "audit.jsonl"
        self.stderr_path = workdir / "stderr.log"
        flags = {"artifact": str(artifact), "public-key": str(public_key), "host": "127.0.0.1",
                 "port": str(self.port), "release": "r1", "track": track, "tenant": "acme",
                 "agent-deployment": "agent", "audit-log": str(self.audit_path)}
        if guardrails is not None:
            (workdir / "guardrails.json").write_text(json.dumps(guardrails))
            flags["guardrails"] = str(workdir / "guardrails.json")
        if api_keys:
            from tugboat_workloads.serve.caller_keys import key_digest

            entries = [{**TEST_CALLER, "sha256": key_digest(key)} for key in api_keys]
            (workdir / "api-keys.json").write_text(json.dumps({"keys": entries}))
            flags["api-keys-file"] = str(workdir / "api-keys.json")
        child_env = {**os.environ, **(env or {})}
        argv = [*launcher, PYTHON, "-m", "tugboat_workloads.serve", *extra_args]
        if via_env:
            child_env.update({"TUGBOAT_" + k.upper().replace("-", "_"): v for k, v in flags.items()})
        else:
            argv += [item for k, v in flags.items() for item in (f"--{k}", v)]
        self._stderr = self.stderr_path.open("w")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self._stderr,
                                     env=child_env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 90.0) -> ServeProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.stderr()}")
            try:
                if http_get(self.url + "/readyz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready after {timeout}s:\n{self.stderr()}")

    def wait_exit(self, timeout: float = 90.0) -> int:
        return self.proc.wait(timeout=timeout)

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text()

    def audit_lines(self) -> list[dict]:
        if not self.audit_path.exists():
            return []
        return [json.loads(line) for line in self.audit_path.read_text().splitlines() if line]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()
        return self.proc.returncode


def http_get(url: str) -> tuple[int, dict[str, str], bytes]:
    return _http(urllib.request.Request(url))


def http_post_json(url: str, body: dict, headers: dict[str, str] | None = None
                   ) -> tuple[int, dict[str, str], dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {TEST_KEY}", **(headers or {})})
    status, reply_headers, raw = _http(request)
    return status, reply_headers, json.loads(raw)


def http_post_raw(url: str, path: str, body: bytes, headers: dict[str, str]
                  ) -> tuple[int, dict[str, str], bytes]:
    """POST exactly these bytes and headers (urllib would add a Content-Type of its own)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.headers), response.read()
    finally:
        conn.close()


def _http(request: urllib.request.Request) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()
