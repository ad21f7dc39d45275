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
  echo "[pyenv] creating $VENV (first time: several minutes, torch is large)" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip >&2
  # Install the dependencies only; the project itself is installed editable on every run.
  "$VENV/bin/pip" install -q -e "$ROOT[dev]" >&2
  touch "$VENV/.complete"
fi
"$VENV/bin/pip" install -q --no-deps -e "$ROOT" >&2
echo "$VENV"
