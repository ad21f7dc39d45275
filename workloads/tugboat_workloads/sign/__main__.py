"""CLI: `python -m tugboat_workloads.sign --artifact DIR --private-key KEY.pem [--result RESULT.json]`.

Translates flags into one `sign_artifact` call and its outcome into an exit code, one line on
stdout/stderr and the result JSON the operator reads. It must not decide anything about signing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tugboat_workloads.sign.keys import KEY_MISSING_EXIT
from tugboat_workloads.sign.manifest_file import MANIFEST_FILE, SIGNATURE_FILE
from tugboat_workloads.sign.signer import SignError, sign_artifact


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tugboat_workloads.sign",
        description="Write manifest.json and model.sig into an artifact directory.")
    parser.add_argument("--artifact", required=True, type=Path, help="artifact directory to sign")
    parser.add_argument("--private-key", required=True, type=Path, help="EC private key, PKCS8 PEM")
    parser.add_argument("--result", type=Path, help="write the outcome as JSON here")
    return parser.parse_args(argv)


def _write_result(path: Path | None, result: dict) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if not args.private_key.is_file():
        # The Secret (mounted optional) or its key is absent: retrying cannot help.
        message = f"signing key {args.private_key} not found: the Secret or its key is missing"
        _write_result(args.result, {"state": "Failed", "reason": "SigningKeyNotFound", "message": message})
        print(message, file=sys.stderr)
        return KEY_MISSING_EXIT
    try:
        signed = sign_artifact(args.artifact, args.private_key)
    except SignError as exc:
        _write_result(args.result, {"state": "Failed", "reason": str(exc.reason), "message": exc.message})
        print(f"signing failed: {exc}", file=sys.stderr)
        return 1
    files = sorted([*signed.files, MANIFEST_FILE, SIGNATURE_FILE])
    _write_result(args.result, {
        "state": "Succeeded",
        "artifact": str(signed.artifact.resolve()),
        "manifestDigest": signed.manifest_digest,
        "signature": SIGNATURE_FILE,
        "files": files,
    })
    print(f"signed {signed.artifact}: {len(signed.files)} files, manifest sha256 {signed.manifest_digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
