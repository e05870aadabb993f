"""Every change of what the registry function runs with reaches the `live` alias.

API Gateway invokes the alias `live`, which points to a published version: a snapshot
of the function's code and configuration (SnapStart restores instances from it). SAM's
AutoPublishAlias publishes a version only when the version's logical id changes, and by
default that id hashes the code and the template's text (`!Ref RegistryAuth`, not its
value): a parameter change or a new layer would leave the alias on the old version,
silently. These tests run SAM's own transform (samtranslator) for two parameter sets, or
two layer contents, evaluate what CloudFormation then deploys (`harness.cfn`), and
compare the versions published: a new version is either a new logical id, or a new
value of a property that cannot be updated (the version's description), which makes
CloudFormation replace it.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness import cfn

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = cfn.load(ROOT / "template.yaml")
#: The signing and custom-domain rules want a public hostname; every set below has one.
BASELINE = {"PublicHostname": "registry.example.com"}
ACCOUNT = "123456789012"
#: For every parameter of the template, another valid value.
ALTERNATIVES: dict[str, Any] = {
    "RegistryAliases": "corp=https://registry.corp.example",
    "UpstreamAllow": "docker.io/library/*, ghcr.io/acme/**",
    "PresignTtlSeconds": "7200",
    "TagTtlSeconds": "60",
    "StaleIfErrorSeconds": "0",
    "CacheRetentionDays": "7",
    "MirrorMaxBytes": "2147483648",
    "UpstreamCredentialsSecretArn": (
        f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:ociwrap/upstreams-AbCdEf"
    ),
    "EcrRepositoryArns": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team/*",
    "RegistryAuth": "basic",
    "RegistryAuthSecretArn": (
        f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:ociwrap/users-XyZ123"
    ),
    "PublicHostname": "other.example.com",
    "DomainCertificateArn": (
        f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
    ),
    "ReservedConcurrency": "20",
    "SigningKmsKeyArn": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "WrapperPolicySecretArn": (
        f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:ociwrap/policy-QwErTy"
    ),
    "TokenMaxTtlSeconds": "86400",
    "ThrottlingRateLimit": "10",
    "ThrottlingBurstLimit": "20",
    "Tracing": "Active",
    "AlarmTopicArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:ops",
    "LogLevel": "DEBUG",
}
#: Parameters that change what the function runs with (its environment, its tracing).
RUNTIME_PARAMETERS = {
    "RegistryAliases",
    "UpstreamAllow",
    "PresignTtlSeconds",
    "TagTtlSeconds",
    "StaleIfErrorSeconds",
    "CacheRetentionDays",
    "MirrorMaxBytes",
    "UpstreamCredentialsSecretArn",
    "EcrRepositoryArns",
    "RegistryAuth",
    "RegistryAuthSecretArn",
    "PublicHostname",
    "SigningKmsKeyArn",
    "WrapperPolicySecretArn",
    "TokenMaxTtlSeconds",
    "Tracing",
    "LogLevel",
}
#: Function properties that are not part of a version (they apply to the function).
NOT_VERSIONED = {"ReservedConcurrentExecutions", "Tags"}


@dataclass(frozen=True)
class Published:
    """What one deploy publishes: the version resource and what the function runs with."""

    version_id: str
    description: str
    alias_target: str
    function: str  # the versioned configuration, as canonical JSON
    configuration_record: str  # the hosted configuration's content


def _as_parameter(value: Any) -> str:
    return ",".join(value) if isinstance(value, list) else str(value)


@functools.cache
def _deploy(
    overrides: tuple[tuple[str, str], ...],
    layer_uri: str = "s3://deploy-bucket/layer-1.zip",
    code_uri: str = "s3://deploy-bucket/code-1.zip",
    template_json: str | None = None,
) -> Published:
    template = json.loads(template_json) if template_json else TEMPLATE
    values = cfn.parameter_values(template, dict(overrides))
    assert not cfn.violations(template, values), cfn.violations(template, values)
    strings = {name: _as_parameter(value) for name, value in values.items()}
    translated = cfn.transform(template, strings, code_uri=code_uri, layer_uri=layer_uri)
    resources = translated["Resources"]

    def of_type(kind: str) -> str:
        [logical_id] = [k for k, v in resources.items() if v["Type"] == kind]
        return logical_id

    plain = cfn.Stack(translated, values)
    configuration = plain.resource(of_type("AWS::AppConfig::HostedConfigurationVersion"))
    content = configuration["Content"]

    def physical(logical_id: str) -> str:
        # A hosted configuration version gets a new number exactly when its content changes
        # (every property requires replacement); a layer version is new with a new logical id.
        if resources[logical_id]["Type"] == "AWS::AppConfig::HostedConfigurationVersion":
            return hashlib.sha256(content.encode()).hexdigest()[:8]
        return f"<{logical_id}>"

    stack = cfn.Stack(translated, values, physical)
    version_id = of_type("AWS::Lambda::Version")
    alias = stack.resource(of_type("AWS::Lambda::Alias"))
    function = stack.resource(of_type("AWS::Lambda::Function"))
    versioned = {k: v for k, v in function.items() if k not in NOT_VERSIONED}
    return Published(
        version_id=version_id,
        description=stack.resource(version_id)["Description"],
        alias_target=alias["FunctionVersion"],
        function=json.dumps(versioned, sort_keys=True),
        configuration_record=content,
    )


def deploy(overrides: dict[str, Any] | None = None, **kwargs: Any) -> Published:
    merged = {**BASELINE, **(overrides or {})}
    return _deploy(tuple(sorted(merged.items())), **kwargs)


def _edited(edit: Any) -> str:
    template = copy.deepcopy(TEMPLATE)
    edit(template)
    return json.dumps(template)


# -- the versions published ----------------------------------------------------------


def test_every_parameter_is_tried() -> None:
    assert set(ALTERNATIVES) == set(TEMPLATE["Parameters"]), (
        "add the new parameter to ALTERNATIVES (and to RUNTIME_PARAMETERS if the function reads it)"
    )


@pytest.mark.parametrize("name", sorted(ALTERNATIVES))
def test_a_parameter_publishes_a_version_exactly_when_the_function_changes(name: str) -> None:
    before, after = deploy(), deploy({name: ALTERNATIVES[name]})
    function_changed = before.function != after.function
    published = (before.version_id, before.description) != (after.version_id, after.description)
    assert function_changed == (name in RUNTIME_PARAMETERS), (
        f"{name} {'changes' if function_changed else 'does not change'} the function"
    )
    if function_changed:
        assert published, (
            f"changing {name} changes the function's configuration but publishes no new "
            "version: the live alias would keep running the old configuration"
        )
    else:
        assert not published, f"changing {name} publishes a version of an unchanged function"
    assert after.alias_target == f"<{after.version_id}>.Version"


def test_the_configuration_record_is_what_the_function_runs_with() -> None:
    """The record lists the function's whole environment and tracing mode, so a change of
    any of them (whatever parameter or condition it comes from) makes a new record."""
    for overrides in [{}] + [{name: value} for name, value in ALTERNATIVES.items()]:
        published = deploy(overrides)
        function = json.loads(published.function)
        expected = [f"{k}={v}" for k, v in function["Environment"]["Variables"].items()]
        mode = function.get("TracingConfig", {}).get("Mode", "Disabled")
        expected.append(f"Tracing={mode}")
        assert sorted(published.configuration_record.split("\n")) == sorted(expected), overrides


def test_new_layer_contents_publish_a_version() -> None:
    first = deploy(layer_uri="s3://deploy-bucket/layer-1.zip")
    second = deploy(layer_uri="s3://deploy-bucket/layer-2.zip")
    assert second.version_id != first.version_id
    assert second.function != first.function  # the function moves to the new layer version
    assert first.description != second.description, "the description names the layer"
    assert deploy(layer_uri="s3://deploy-bucket/layer-1.zip") == first


def test_new_code_publishes_a_version() -> None:
    first = deploy(code_uri="s3://deploy-bucket/code-1.zip")
    second = deploy(code_uri="s3://deploy-bucket/code-2.zip")
    assert second.version_id != first.version_id


@pytest.mark.parametrize(
    ("setting", "value"),
    [("MemorySize", 1024), ("Timeout", 20), ("Architectures", ["x86_64"])],
)
def test_template_settings_publish_a_version(setting: str, value: Any) -> None:
    def edit(template: dict[str, Any]) -> None:
        template["Globals"]["Function"][setting] = value

    changed = deploy(template_json=_edited(edit))
    assert changed.function != deploy().function
    assert changed.version_id != deploy().version_id


def test_the_same_deploy_again_publishes_nothing() -> None:
    _deploy.cache_clear()
    first = deploy({"RegistryAuth": "basic"})
    _deploy.cache_clear()
    assert deploy({"RegistryAuth": "basic"}) == first


def test_replaced_versions_are_deleted() -> None:
    """A version left behind keeps its SnapStart snapshot (and its cost) forever."""
    values = cfn.parameter_values(TEMPLATE, BASELINE)
    translated = cfn.transform(TEMPLATE, {k: _as_parameter(v) for k, v in values.items()})
    [version] = [v for v in translated["Resources"].values() if v["Type"] == "AWS::Lambda::Version"]
    assert version["DeletionPolicy"] == "Delete"
    assert version.get("UpdateReplacePolicy", "Delete") == "Delete"


def _resource_schema(kind: str) -> dict[str, Any]:
    """The CloudFormation resource schema cfn-lint carries for `kind` (us-east-1)."""
    import cfnlint

    schemas = Path(cfnlint.__file__).parent / "data" / "schemas"
    index = json.loads((schemas / "providers" / "us-east-1.json").read_text())
    return json.loads((schemas / "resources" / f"{index[kind]}.json").read_text())


def test_what_publishes_a_version_cannot_be_updated_in_place() -> None:
    """The mechanism rests on CloudFormation replacing, not updating, both resources."""
    version = _resource_schema("AWS::Lambda::Version")
    assert "/properties/Description" in version["createOnlyProperties"]
    record = _resource_schema("AWS::AppConfig::HostedConfigurationVersion")
    assert "/properties/Content" in record["createOnlyProperties"]
    longest = cfn.Stack(
        cfn.transform(TEMPLATE, {}),
        cfn.parameter_values(TEMPLATE, {}),
        lambda logical_id: (
            "arn:aws-us-gov:lambda:ap-southeast-2:123456789012:layer:OciwrapLayer:99999"
            if logical_id.startswith("OciwrapLayer")
            else "99999"
        ),
    )
    [version_id] = [
        k for k, v in longest.template["Resources"].items() if v["Type"] == "AWS::Lambda::Version"
    ]
    description = longest.resource(version_id)["Description"]
    assert len(description) <= version["properties"]["Description"]["maxLength"]


# -- parameters that fail early ------------------------------------------------------


@pytest.mark.parametrize(
    "hostname",
    ["", "registry.example.com", "r.example.io", "a-b.c-d.example", "xn--bcher-kva.example"],
)
def test_public_hostname_accepts_host_names(hostname: str) -> None:
    values = cfn.parameter_values(TEMPLATE, {"PublicHostname": hostname})
    assert cfn.violations(TEMPLATE, values) == []


@pytest.mark.parametrize(
    "hostname",
    [
        "https://registry.example.com",
        "registry.example.com/",
        "registry.example.com:443",
        "Registry.Example.com",
        "registry.example.com.",
        "registry",
        "-registry.example.com",
        "registry..example.com",
        "registry example.com",
        "registry.example.com\n",
        "a" * 64 + ".example.com",
        ("a" * 60 + ".") * 4 + "example.com",
    ],
)
def test_public_hostname_refuses_what_is_no_host_name(hostname: str) -> None:
    """A bad value fails the deploy before anything is created, naming the parameter."""
    values = cfn.parameter_values(TEMPLATE, {"PublicHostname": hostname})
    problems = cfn.violations(TEMPLATE, values)
    assert problems and all(p.startswith("PublicHostname") for p in problems), problems


def test_the_pattern_is_one_cloudformation_can_read() -> None:
    """CloudFormation matches AllowedPattern with Java regular expressions: keep to the
    syntax both share (no lookarounds, no inline flags, no possessive quantifiers)."""
    for name, spec in TEMPLATE["Parameters"].items():
        pattern = spec.get("AllowedPattern")
        if pattern:
            assert not re.search(r"\(\?[=!<a-zA-Z]|[*+?}]\+", pattern), name


@pytest.mark.parametrize(
    ("overrides", "rule"),
    [
        ({"SigningKmsKeyArn": ALTERNATIVES["SigningKmsKeyArn"]}, "SigningNeedsPublicHostname"),
        (
            {"DomainCertificateArn": ALTERNATIVES["DomainCertificateArn"]},
            "CustomDomainNeedsPublicHostname",
        ),
    ],
)
def test_settings_that_need_a_public_hostname(overrides: dict[str, Any], rule: str) -> None:
    without = cfn.parameter_values(TEMPLATE, {**overrides, "PublicHostname": ""})
    assert [p.split(":")[0] for p in cfn.violations(TEMPLATE, without)] == [rule]
    with_host = cfn.parameter_values(TEMPLATE, {**overrides, **BASELINE})
    assert cfn.violations(TEMPLATE, with_host) == []


# -- tracing -------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "traced"), [("Disabled", False), ("Active", True)])
def test_xray_permissions_only_when_tracing_is_on(mode: str, traced: bool) -> None:
    translated = cfn.transform(TEMPLATE, {"Tracing": mode})
    resources = translated["Resources"]
    role = resources["RegistryFunctionRole"]["Properties"]
    xray = "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"
    assert (xray in role["ManagedPolicyArns"]) is traced
    function = resources["RegistryFunction"]["Properties"]
    assert ("TracingConfig" in function) is traced
    if traced:
        values = cfn.parameter_values(TEMPLATE, {"Tracing": mode})
        assert cfn.Stack(translated, values).value(function["TracingConfig"]) == {"Mode": "Active"}
