"""WRAPPER_POLICY as a value: read from its file (or secret), parsed as a policy, and an
unusable document a 503 that names the setting."""

from __future__ import annotations

import json
import os

import pytest

from ociwrap.runtime.errors import RegistryError
from ociwrap.runtime.secrets import SecretDocument
from ociwrap.signing.policy import Policy, Rule
from ociwrap.signing.policy_source import PolicySource


def source(path) -> PolicySource:
    return PolicySource(
        SecretDocument("WRAPPER_POLICY_SECRET", None, "WRAPPER_POLICY_FILE", str(path))
    )


def test_a_policy_file_is_read_as_a_policy(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"wrappers": [{"images": "ghcr.io/acme/**", "unsigned": True}]}))
    assert source(path).policy() == Policy(
        wrappers=(Rule(images="ghcr.io/acme/**", keys=(), unsigned=True),),
        bases=(),
        has_wrapper_rules=True,
    )


def test_without_either_setting_there_is_no_policy():
    document = SecretDocument("WRAPPER_POLICY_SECRET", None, "WRAPPER_POLICY_FILE", None)
    assert PolicySource(document).policy() is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{not json", "not valid JSON (JSONDecodeError)"),
        ("[]", 'the policy must be a JSON object with "wrappers" and/or "bases"'),
        ('{"roles": []}', 'unknown fields [\'roles\']: the policy has "wrappers" and "bases"'),
    ],
)
def test_an_unusable_policy_is_a_503_naming_the_setting(tmp_path, text, why):
    path = tmp_path / "policy.json"
    path.write_text(text)
    with pytest.raises(RegistryError) as caught:
        source(path).policy()
    assert (caught.value.status, caught.value.code) == (503, "UNAVAILABLE")
    assert caught.value.message == f"WRAPPER_POLICY_FILE is not a usable policy: {why}"


def test_a_changed_policy_file_is_read_again(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"bases": [{"images": "a/**", "unsigned": True}]}))
    os.utime(path, (1, 1))
    policies = source(path)
    assert policies.policy().bases[0].images == "a/**"
    path.write_text(json.dumps({"bases": [{"images": "b/**", "unsigned": True}]}))
    os.utime(path, (2, 2))
    assert policies.policy().bases[0].images == "b/**"
