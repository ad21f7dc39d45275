#!/usr/bin/env bash
# Create (once) and print the path of a virtualenv outside the clone, keyed by a hash of the
# dependency spec in pyproject.toml, so reruns and CI on the same machine reuse the multi-GB torch.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${TUGBOAT_CACHE:-$HOME/.cache/tugboat}
key=$(python3 - "$ROOT/pyproject.toml" <<'PY'
import hashlib, json, sys, tomllib
p = tomllib.load(open(sys.argv[1], "rb"))["project"]
spec = {"py": sys.version_info[:2], "deps": p["dependencies"], "extras": p["optional-dependencies"]}
print(hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12])
PY
)
VENV=$CACHE/venv-$key
mkdir -p "$CACHE"
# One creator at a time: a second caller (demo and tests side by side) waits instead of deleting
# the half-built environment under the first.
exec 9>"$CACHE/.venv-$key.lock"
flock 9
if [[ ! -f $VENV/.complete ]]; then
  echo "[pyenv] creating $VENV (first time: 2-6 min, most of it downloading torch)" >&2
  t0=$SECONDS
  # pip's own progress bars on a terminal; in CI logs one line per package it collects.
  quiet=(-q); [[ -t 2 ]] && quiet=()
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install "${quiet[@]}" --upgrade pip >&2
  # Install the dependencies only; the project itself is installed editable on every run.
  if ! "$VENV/bin/pip" install --progress-bar "$([[ -t 2 ]] && echo on || echo off)" -e "$ROOT[dev]" \
      | { if [[ -t 2 ]]; then cat; else grep --line-buffered '^Collecting\|^Successfully' || true; fi; } >&2; then
    echo "[pyenv] error: installing the dependencies failed after $((SECONDS - t0)) s" >&2
    echo "[pyenv] next: check that PyPI answers (pip config list; pip download --no-deps six)," \
      "free disk space (torch needs about 6 GB), then run again" >&2
    exit 1
  fi
  touch "$VENV/.complete"
  echo "[pyenv] ready in $((SECONDS - t0)) s: $VENV" >&2
fi
# Quiet unless it fails (setuptools warns about every editable install).
if ! out=$("$VENV/bin/pip" install -q --no-deps -e "$ROOT" 2>&1); then
  echo "$out" >&2
  echo "[pyenv] error: installing $ROOT into $VENV failed; next: rm -rf $VENV and run again" >&2
  exit 1
fi
echo "$VENV"
