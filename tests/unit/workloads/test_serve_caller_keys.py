"""API keys: their format, the keys file (hashes and levels only) and loading it."""

import hashlib
import json

import pytest

from tugboat_workloads.serve.caller_keys import (
    ApiKey,
    ApiKeysError,
    bearer_token,
    key_digest,
    key_tenant,
    load_api_keys,
    new_api_key,
    parse_api_keys,
)


def test_a_new_key_names_its_tenant_and_is_hashed_for_the_file():
    key = new_api_key("team-a")
    assert key.startswith("tbk_team-a_") and len(key) > 40
    assert key_tenant(key) == "team-a" and new_api_key("team-a") != key
    assert key_digest(key) == hashlib.sha256(key.encode()).hexdigest()


@pytest.mark.parametrize("key, tenant", [("tbk_acme_x_y-z", "acme"), ("tbk_acme_", None), ("tbk__x", None),
                                         ("acme_x", None), ("tbk_acme", None)])
def test_key_tenant(key, tenant):
    assert key_tenant(key) == tenant


@pytest.mark.parametrize("header, token", [("Bearer abc", "abc"), ("BEARER  abc ", "abc"), ("Bearer", None),
                                           ("Token abc", None), (None, None), ("", None)])
def test_bearer_token(header, token):
    assert bearer_token(header) == token


def test_the_keys_file_maps_hashes_to_names_and_levels(tmp_path):
    digest = "a" * 64
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [{"name": "ci", "sha256": digest, "permissionLevel": "Elevated"}]}))
    keys = load_api_keys(str(path))
    assert keys.by_digest == {digest: ApiKey("ci", "Elevated")} and keys.missing is None


def test_no_keys_file_means_no_key_is_valid(tmp_path):
    assert load_api_keys(None).missing == "the server was started without --api-keys-file"
    missing = load_api_keys(str(tmp_path / "absent.json"))
    assert missing.by_digest == {} and "does not exist" in missing.missing


@pytest.mark.parametrize("raw, field", [
    ([], "must be an object"),
    ({"keys": [{"name": "ci", "sha256": "A" * 64, "permissionLevel": "Standard"}]}, "keys[0].sha256"),
    ({"keys": [{"name": "ci", "sha256": "a" * 63, "permissionLevel": "Standard"}]}, "keys[0].sha256"),
    ({"keys": [{"name": "", "sha256": "a" * 64, "permissionLevel": "Standard"}]}, "keys[0].name"),
    ({"keys": [{"name": "ci", "sha256": "a" * 64, "permissionLevel": "Root"}]}, "keys[0].permissionLevel"),
    ({"keys": [{"name": "ci", "key": "tbk_acme_x", "permissionLevel": "Standard"}]}, "needs exactly"),
])
def test_a_malformed_keys_file_names_the_field(raw, field):
    with pytest.raises(ApiKeysError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_api_keys(raw, "/k.json")
