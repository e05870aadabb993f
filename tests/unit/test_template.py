"""The SAM template deploys what the registry code expects, read from the YAML itself.

The real linters (`cfn-lint`, `sam validate --lint`) run in
`tests/integration/test_template_lint.py`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from harness import cfn
from ociwrap.bucket import records, staging, store
from ociwrap.image.recipes import from_wrap
from ociwrap.names.reference import ImageRef, parse_wrap_name, resolve_repository
from ociwrap.registry.settings import CACHE_RETENTION_DAYS, TOKEN_MAX_TTL_SECONDS

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"

#: Environment variables the registry code reads, and what the template sets them from.
EXPECTED_ENV = {
    "ARTIFACT_BUCKET": {"Ref": "ArtifactBucket"},
    "REGISTRY_ALIASES": {"Ref": "RegistryAliases"},
    "PRESIGN_TTL_SECONDS": {"Ref": "PresignTtlSeconds"},
    "TAG_TTL_SECONDS": {"Ref": "TagTtlSeconds"},
    "LOG_LEVEL": {"Ref": "LogLevel"},
    "POWERTOOLS_SERVICE_NAME": "ociwrap",
}
#: Read by the code but only meaningful off AWS (the embedded S3 of `make run`).
LOCAL_ONLY_ENV = {
    "S3_ENDPOINT_URL",
    "UPSTREAM_CREDENTIALS_FILE",
    "REGISTRY_AUTH_FILE",
    "SIGNING_KEY_FILE",
    "WRAPPER_POLICY_FILE",
}
#: Names the registry writes keys for, to see which lifecycle rule reaches each key.
DIGEST = "sha256:" + "ab" * 32
RECIPE = from_wrap(parse_wrap_name("wrap/busybox/1/with/acme/wrapper/1", {}))
IMAGE = ImageRef(resolve_repository("acme/app", {}), tag="1")
#: The bucket's cache, made again on demand: it expires after CacheRetentionDays.
CACHE_PREFIXES = {"manifests/", "blobs/", "tags/upstream/", "tags/links/", "tags/compositions/"}


# -- loading -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return cfn.load(TEMPLATE)


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


def _of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    found = {name: res for name, res in resources.items() if res["Type"] == kind}
    assert found, f"no {kind} in template.yaml"
    return found


def _one(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    found = _of_type(resources, kind)
    assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
    return next(iter(found.values()))


# -- API -----------------------------------------------------------------------------


def test_http_api_uses_the_default_stage(resources: dict[str, Any]) -> None:
    api = resources["RegistryApi"]
    assert api["Type"] == "AWS::Serverless::HttpApi"
    # A named stage would prefix every path, and clients need /v2/ at the host root.
    assert api["Properties"]["StageName"] == "$default"


def test_every_request_reaches_the_function(resources: dict[str, Any]) -> None:
    events = resources["RegistryFunction"]["Properties"]["Events"]
    http_events = [e["Properties"] for e in events.values() if e["Type"] == "HttpApi"]
    assert len(http_events) == 1, "one catch-all route, no per-path routes"
    route = http_events[0]
    assert route["ApiId"] == {"Ref": "RegistryApi"}
    assert route["Path"] == "$default"
    assert route["Method"].upper() == "ANY"
    assert str(route["PayloadFormatVersion"]) == "2.0"


# -- function and layer --------------------------------------------------------------


def test_function_globals(template: dict[str, Any]) -> None:
    function = template["Globals"]["Function"]
    assert function["Runtime"] == "python3.12"
    assert function["Architectures"] == ["arm64"]
    assert function["Timeout"] < 30, "an HTTP API gives up on its integration after 30 s"
    assert function["MemorySize"] >= 256
    assert {"Ref": "OciwrapLayer"} in function["Layers"]


def test_function_code_and_handler(resources: dict[str, Any]) -> None:
    props = resources["RegistryFunction"]["Properties"]
    assert resources["RegistryFunction"]["Type"] == "AWS::Serverless::Function"
    assert props["CodeUri"].rstrip("/") == "functions/registry"
    assert props["Handler"] == "app.lambda_handler"
    assert (ROOT / "functions" / "registry").is_dir()


def test_layer_builds_the_library_for_arm64(resources: dict[str, Any]) -> None:
    layer = resources["OciwrapLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    # layers/ociwrap/Makefile: SAM's Python builder would ship aws-xray-sdk's botocore.
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Metadata"]["BuildArchitecture"] == "arm64"
    props = layer["Properties"]
    assert props["ContentUri"].rstrip("/") == "layers/ociwrap"
    assert props["CompatibleRuntimes"] == ["python3.12"]
    assert props["CompatibleArchitectures"] == ["arm64"]
    assert props["PublishLambdaVersion"] is True
    makefile = (ROOT / "layers" / "ociwrap" / "Makefile").read_text(encoding="utf-8")
    assert "build-OciwrapLayer:" in makefile
    assert "LAYER_ARCHITECTURE ?= arm64" in makefile
    assert (ROOT / "layers" / "ociwrap" / "ociwrap").is_dir()


def test_environment_variables(template: dict[str, Any]) -> None:
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    for name, value in EXPECTED_ENV.items():
        assert env.get(name) == value, name
    # Declared for `sam local start-api --env-vars` (it sets declared variables only);
    # empty in AWS, where the function talks to the region's S3.
    assert env["S3_ENDPOINT_URL"] == ""
    assert not (LOCAL_ONLY_ENV - {"S3_ENDPOINT_URL"}) & env.keys(), "files are for make run"


def test_template_sets_every_variable_the_settings_read(template: dict[str, Any]) -> None:
    config = ROOT / "layers" / "ociwrap" / "ociwrap" / "registry" / "settings.py"
    read = set(re.findall(r"""env(?:\.get\(|,\s*)["']([A-Z][A-Z0-9_]+)["']""", config.read_text()))
    assert "ARTIFACT_BUCKET" in read, "config.py no longer reads settings the way this test looks"
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert read - LOCAL_ONLY_ENV <= env.keys()


def test_parameter_defaults(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert params["RegistryAliases"]["Default"] == ""
    assert params["UpstreamAllow"]["Default"] == ""  # any upstream, as before
    assert int(params["PresignTtlSeconds"]["Default"]) == 3600
    assert int(params["TagTtlSeconds"]["Default"]) == 300
    assert int(params["StaleIfErrorSeconds"]["Default"]) == 86400
    assert int(params["MirrorMaxBytes"]["Default"]) == 1024**3
    assert int(params["MirrorMaxBytes"]["MaxValue"]) == 5 * 1024**3
    assert params["LogLevel"]["Default"] == "INFO"
    assert "INFO" in params["LogLevel"]["AllowedValues"]


def test_function_logs_to_a_group_with_retention(resources: dict[str, Any]) -> None:
    logging = resources["RegistryFunction"]["Properties"]["LoggingConfig"]
    group = resources[logging["LogGroup"]["Ref"]]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert 1 <= group["Properties"]["RetentionInDays"] <= 365


# -- permissions ---------------------------------------------------------------------


def _all_statements(resources: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """(condition or None, statement) for every statement of the function's policies."""
    policies = resources["RegistryFunction"]["Properties"]["Policies"]
    statements: list[tuple[str | None, dict[str, Any]]] = []
    for policy in policies:
        assert isinstance(policy, dict) and "Statement" in policy, (
            f"only inline policy documents, not managed policies or templates: {policy!r}"
        )
        for statement in policy["Statement"]:
            if "Fn::If" in statement:
                condition, chosen, otherwise = statement["Fn::If"]
                assert otherwise == {"Ref": "AWS::NoValue"}
                statements.append((condition, chosen))
            else:
                statements.append((None, statement))
    return statements


def _statements(resources: dict[str, Any]) -> list[dict[str, Any]]:
    """The statements every deployment has (on the artifact bucket)."""
    return [statement for condition, statement in _all_statements(resources) if not condition]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_function_policy_is_least_privilege(resources: dict[str, Any]) -> None:
    statements = _statements(resources)
    actions: set[str] = set()
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        for action in _as_list(statement["Action"]):
            assert "*" not in action, f"wildcard action {action!r}"
            actions.add(action)
        for resource in _as_list(statement["Resource"]):
            assert resource != "*"
            assert "ArtifactBucket" in repr(resource), f"{resource!r} is not the artifact bucket"
    assert {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"} <= actions
    assert all(action.startswith("s3:") for action in actions)
    assert not actions & {"s3:PutBucketPolicy", "s3:DeleteBucket", "s3:PutObjectAcl"}


def test_secrets_kms_and_ecr_are_granted_only_when_configured(
    resources: dict[str, Any], template: dict[str, Any]
) -> None:
    """Each optional grant is exactly what its parameter names, and only when it is set."""
    conditional = {
        statement["Sid"]: (condition, statement)
        for condition, statement in _all_statements(resources)
        if condition
    }
    expected = {
        "UpstreamCredentials": (
            "HasUpstreamCredentials",
            ["secretsmanager:GetSecretValue"],
            {"Ref": "UpstreamCredentialsSecretArn"},
        ),
        "RegistryUsers": (
            "HasRegistryAuthSecret",
            ["secretsmanager:GetSecretValue"],
            {"Ref": "RegistryAuthSecretArn"},
        ),
        "SignCompositions": (
            "HasSigningKey",
            ["kms:Sign", "kms:GetPublicKey"],
            {"Ref": "SigningKmsKeyArn"},
        ),
        "WrapperPolicy": (
            "HasWrapperPolicy",
            ["secretsmanager:GetSecretValue"],
            {"Ref": "WrapperPolicySecretArn"},
        ),
        "EcrLogin": ("HasEcrRepositories", ["ecr:GetAuthorizationToken"], "*"),
        "EcrPull": (
            "HasEcrRepositories",
            ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            {"Ref": "EcrRepositoryArns"},
        ),
    }
    assert conditional.keys() == expected.keys()
    for sid, (condition, actions, resource) in expected.items():
        got_condition, statement = conditional[sid]
        assert got_condition == condition
        assert sorted(_as_list(statement["Action"])) == sorted(actions)
        assert statement["Resource"] == resource
    conditions = template["Conditions"]
    assert conditions["HasUpstreamCredentials"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "UpstreamCredentialsSecretArn"}, ""]}]
    }
    assert template["Parameters"]["EcrRepositoryArns"]["Default"] == ""
    assert template["Parameters"]["RegistryAuth"]["AllowedValues"] == ["none", "basic"]


def test_the_api_is_throttled(resources: dict[str, Any]) -> None:
    settings = resources["RegistryApi"]["Properties"]["DefaultRouteSettings"]
    assert settings == {
        "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"},
    }


def test_list_bucket_is_on_the_bucket_and_object_actions_on_its_objects(
    resources: dict[str, Any],
) -> None:
    for statement in _statements(resources):
        actions = set(_as_list(statement["Action"]))
        for resource in _as_list(statement["Resource"]):
            if "s3:ListBucket" in actions:
                assert resource == {"Fn::GetAtt": ["ArtifactBucket", "Arn"]}
            elif "s3:DeleteObject" in actions:
                # deleting is for the staging area of streamed copies only
                assert resource == {"Fn::Sub": "${ArtifactBucket.Arn}/uploads/*"}
            elif actions == {"s3:AbortMultipartUpload"}:
                # a blob assembled from its staged parts that did not complete
                assert resource == {"Fn::Sub": "${ArtifactBucket.Arn}/blobs/*"}
            else:
                assert resource == {"Fn::Sub": "${ArtifactBucket.Arn}/*"}


# -- bucket --------------------------------------------------------------------------


def test_bucket_is_private_and_encrypted(resources: dict[str, Any]) -> None:
    props = resources["ArtifactBucket"]["Properties"]
    assert resources["ArtifactBucket"]["Type"] == "AWS::S3::Bucket"
    block = props["PublicAccessBlockConfiguration"]
    for setting in (
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ):
        assert block[setting] is True, setting
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rules[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def _lifecycle(resources: dict[str, Any]) -> list[dict[str, Any]]:
    rules = resources["ArtifactBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert all(rule["Status"] == "Enabled" for rule in rules)
    return rules


def test_staging_uploads_expire_after_a_day(resources: dict[str, Any]) -> None:
    rules = _lifecycle(resources)
    uploads = [r for r in rules if r.get("Prefix") == "uploads/" and "ExpirationInDays" in r]
    assert uploads and uploads[0]["ExpirationInDays"] == 1
    aborts = [r for r in rules if "AbortIncompleteMultipartUpload" in r]
    assert aborts and aborts[0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1


def _expiring(resources: dict[str, Any]) -> dict[str, Any]:
    """{prefix: days} of the rules that expire objects (every one names a prefix)."""
    rules = _lifecycle(resources)
    assert not [rule for rule in rules if "ExpirationDate" in rule]
    expiring = [rule for rule in rules if "ExpirationInDays" in rule]
    assert all(rule.get("Prefix") for rule in expiring), "a rule without a prefix expires all"
    return {rule["Prefix"]: rule["ExpirationInDays"] for rule in expiring}


def test_the_cache_expires_after_its_retention_and_nothing_else_does(
    resources: dict[str, Any], template: dict[str, Any]
) -> None:
    expiring = _expiring(resources)
    retention = {"Ref": "CacheRetentionDays"}
    assert {prefix for prefix, days in expiring.items() if days == retention} == CACHE_PREFIXES
    # Source records and signature records make the cache again: no rule reaches them.
    assert set(expiring) == CACHE_PREFIXES | {"uploads/", "tokens/"}
    parameter = template["Parameters"]["CacheRetentionDays"]
    assert (parameter["Type"], int(parameter["Default"]), int(parameter["MinValue"])) == (
        "Number",
        CACHE_RETENTION_DAYS,
        1,
    )
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["CACHE_RETENTION_DAYS"] == retention


def test_container_tokens_outlive_their_longest_lifetime(
    resources: dict[str, Any], template: dict[str, Any]
) -> None:
    days = _expiring(resources)["tokens/"]
    assert isinstance(days, int), "never tied to the cache's retention"
    longest = int(template["Parameters"]["TokenMaxTtlSeconds"]["MaxValue"])
    assert longest == TOKEN_MAX_TTL_SECONDS
    assert days * 86400 >= longest


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        (store.manifest_key(DIGEST), "cache"),
        (store.blob_key(DIGEST), "cache"),
        (records.tag_record_key(IMAGE), "cache"),
        (records.link_key(IMAGE.repository, DIGEST), "cache"),
        (records.composition_key(RECIPE, DIGEST, [DIGEST]), "cache"),
        (records.source_key(RECIPE.scope, DIGEST), None),
        (records.signature_key("k" * 16, "registry.example.com/x", DIGEST), None),
        (staging.area("https://r.example/app", DIGEST) + "part-00001.x", 1),
        (records.token_key("a" * 26), 30),
    ],
)
def test_each_key_the_registry_writes_expires_as_intended(
    resources: dict[str, Any], key: str, rule: object
) -> None:
    matching = [days for prefix, days in _expiring(resources).items() if key.startswith(prefix)]
    expected = [{"Ref": "CacheRetentionDays"}] if rule == "cache" else [rule] if rule else []
    assert matching == expected, key


def test_readme_states_the_retention_of_every_prefix(resources: dict[str, Any]) -> None:
    """The storage table's retention column says what the lifecycle rules do."""
    rows = _readme_table("Storage layout", "prefix", column=2)
    assert rows, "no storage table in the README"
    expiring = _expiring(resources)
    for prefix, retention in rows.items():
        days = [d for p, d in expiring.items() if prefix.startswith(p)]
        if days == [{"Ref": "CacheRetentionDays"}]:
            assert retention.startswith("`CACHE_RETENTION_DAYS`"), prefix
        elif days:
            assert retention.startswith(f"{days[0]} day"), prefix
        else:
            assert retention.startswith("kept"), prefix
    for prefix in expiring:  # and no rule reaches what the table does not list
        assert any(row.startswith(prefix) for row in rows), prefix


def test_bucket_refuses_plain_http(resources: dict[str, Any]) -> None:
    policy = _one(resources, "AWS::S3::BucketPolicy")["Properties"]
    assert policy["Bucket"] == {"Ref": "ArtifactBucket"}
    denies = [
        s
        for s in policy["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny"
        and str(s["Condition"]["Bool"]["aws:SecureTransport"]).lower() == "false"
    ]
    assert denies, "no statement denies requests without TLS"
    resources_denied = denies[0]["Resource"]
    assert {"Fn::GetAtt": ["ArtifactBucket", "Arn"]} in resources_denied
    assert {"Fn::Sub": "${ArtifactBucket.Arn}/*"} in resources_denied


# -- outputs and deploy defaults -----------------------------------------------------


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    condition, domain, default = outputs["RegistryUrl"]["Value"]["Fn::If"]
    assert condition == "HasCustomDomain"
    assert domain == {"Fn::Sub": "https://${PublicHostname}"}
    assert default == {
        "Fn::Sub": "https://${RegistryApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
    }
    assert outputs["ArtifactBucketName"]["Value"] == {"Ref": "ArtifactBucket"}
    assert outputs["RegistryFunctionArn"]["Value"] == {"Fn::GetAtt": ["RegistryFunction", "Arn"]}
    assert outputs["RegistryFunctionVersion"]["Value"] == {"Ref": "RegistryFunction.Version"}
    for name in ("DomainTarget", "DomainTargetZoneId"):
        assert outputs[name]["Condition"] == "HasCustomDomain"


def test_samconfig_defaults() -> None:
    import tomllib

    config = tomllib.loads(SAMCONFIG.read_text(encoding="utf-8"))
    assert str(config["version"]) == "0.1"
    default = config["default"]
    assert default["global"]["parameters"]["stack_name"] == "ociwrap"
    deploy = default["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert deploy["confirm_changeset"] is True
    assert default["validate"]["parameters"]["lint"] is True


def test_snapstart_on_the_published_alias(resources: dict[str, Any]) -> None:
    props = resources["RegistryFunction"]["Properties"]
    assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert props["AutoPublishAlias"] == "live"
    assert props["Tracing"] == {"Ref": "Tracing"}


def test_reserved_concurrency_is_a_parameter(
    resources: dict[str, Any], template: dict[str, Any]
) -> None:
    parameter = template["Parameters"]["ReservedConcurrency"]
    assert (parameter["Type"], int(parameter["Default"]), int(parameter["MinValue"])) == (
        "Number",
        0,
        0,
    )
    # 0 reserves none; reserving 0 executions would stop the function altogether.
    assert resources["RegistryFunction"]["Properties"]["ReservedConcurrentExecutions"] == {
        "Fn::If": [
            "HasReservedConcurrency",
            {"Ref": "ReservedConcurrency"},
            {"Ref": "AWS::NoValue"},
        ]
    }
    assert template["Conditions"]["HasReservedConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ReservedConcurrency"}, 0]}]
    }


def test_custom_domain(resources: dict[str, Any], template: dict[str, Any]) -> None:
    """A certificate parameter makes PublicHostname the API's domain and turns off the
    execute-api host; without one, nothing of it exists."""
    assert template["Conditions"]["HasCustomDomain"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "DomainCertificateArn"}, ""]}]
    }
    domain = resources["RegistryDomain"]
    assert domain["Type"] == "AWS::ApiGatewayV2::DomainName"
    assert domain["Condition"] == "HasCustomDomain"
    assert domain["Properties"]["DomainName"] == {"Ref": "PublicHostname"}
    assert domain["Properties"]["DomainNameConfigurations"] == [
        {
            "CertificateArn": {"Ref": "DomainCertificateArn"},
            "EndpointType": "REGIONAL",
            "SecurityPolicy": "TLS_1_2",
        }
    ]
    mapping = resources["RegistryDomainMapping"]
    assert mapping["Condition"] == "HasCustomDomain"
    assert "ApiMappingKey" not in mapping["Properties"], "/v2/ must stay at the host's root"
    assert mapping["Properties"]["ApiId"] == {"Ref": "RegistryApi"}
    api = resources["RegistryApi"]["Properties"]
    assert api["DisableExecuteApiEndpoint"] == {"Fn::If": ["HasCustomDomain", True, False]}


def _alarms(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in resources.items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def _metric_stats(alarm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["Id"]: m["MetricStat"] for m in alarm.get("Metrics", []) if "MetricStat" in m}


def test_the_error_rate_alarm_divides_counts(resources: dict[str, Any]) -> None:
    """HTTP APIs report 5xx and Count per period: the rate is their ratio of sums (an
    Average of 5xx is the rate only while every datapoint is one request)."""
    alarm = _alarms(resources)["ErrorRateAlarm"]
    stats = _metric_stats(alarm)
    assert {s["Metric"]["MetricName"] for s in stats.values()} == {"5xx", "Count"}
    assert {s["Stat"] for s in stats.values()} == {"Sum"}
    for stat in stats.values():
        assert stat["Metric"]["Dimensions"] == [{"Name": "ApiId", "Value": {"Ref": "RegistryApi"}}]
    [expression] = [m for m in alarm["Metrics"] if "Expression" in m]
    assert expression["ReturnData"] is True
    errors = next(i for i, s in stats.items() if s["Metric"]["MetricName"] == "5xx")
    requests = next(i for i, s in stats.items() if s["Metric"]["MetricName"] == "Count")
    assert f"{errors} / {requests}" in expression["Expression"]
    assert alarm["Threshold"] == 0.05
    assert "Statistic" not in alarm


def test_alarms_on_surges_and_throttles(resources: dict[str, Any]) -> None:
    alarms = _alarms(resources)
    surge = alarms["ClientErrorSurgeAlarm"]
    [stat] = _metric_stats(surge).values()
    assert stat["Metric"]["MetricName"] == "4xx"
    band = next(m for m in surge["Metrics"] if m["Id"] == surge["ThresholdMetricId"])
    assert band["Expression"].startswith("ANOMALY_DETECTION_BAND(")
    assert surge["ComparisonOperator"] == "GreaterThanUpperThreshold"

    # API Gateway's own 429s never reach the function: they are counted from the access log.
    metric = resources["TooManyRequestsMetric"]["Properties"]
    assert metric["LogGroupName"] == {"Ref": "ApiAccessLogGroup"}
    assert metric["FilterPattern"] == '{ $.status = "429" }'
    [transformation] = metric["MetricTransformations"]
    too_many = alarms["TooManyRequestsAlarm"]
    assert (too_many["Namespace"], too_many["MetricName"]) == (
        transformation["MetricNamespace"],
        transformation["MetricName"],
    )
    assert '"status":"$context.status"' in resources["RegistryApi"]["Properties"][
        "AccessLogSettings"
    ]["Format"].replace(" ", "")

    throttles = alarms["ThrottlesAlarm"]
    assert (throttles["Namespace"], throttles["MetricName"]) == ("AWS/Lambda", "Throttles")
    assert throttles["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": "RegistryFunction"}}
    ]
    assert (throttles["Threshold"], throttles["Statistic"]) == (0, "Sum")


def test_dashboard_and_alarms(resources: dict[str, Any]) -> None:
    assert resources["RegistryDashboard"]["Type"] == "AWS::CloudWatch::Dashboard"
    alarms = _alarms(resources)
    assert set(alarms) == {
        "ErrorRateAlarm",
        "ClientErrorSurgeAlarm",
        "TooManyRequestsAlarm",
        "ThrottlesAlarm",
        "UpstreamErrorsAlarm",
        "NearDeadlineAlarm",
    }
    for alarm in alarms.values():
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == {
            "Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
        }
    duration = alarms["NearDeadlineAlarm"]
    assert (duration["Namespace"], duration["MetricName"]) == ("AWS/Lambda", "Duration")
    assert duration["Threshold"] < 28000  # before the request deadline, not after it


# -- the README's deploy section says what the template does -------------------------------


def _readme_table(heading: str, first_column: str, column: int = 1) -> dict[str, str]:
    """Rows of the README table under `heading` whose header starts with `first_column`:
    each name in backquotes in the first cell -> the cell `column` (the second)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(heading, 1)[1]
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_column} |"))
    rows: dict[str, str] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        for name in re.findall(r"`([^`]+)`", cells[0]):
            rows[name] = cells[column]
    return rows


def test_readme_lists_every_parameter_with_its_default(template: dict[str, Any]) -> None:
    documented = _readme_table("### Build and deploy", "parameter")
    parameters = template["Parameters"]
    assert set(documented) == set(parameters)
    for name, spec in parameters.items():
        default = str(spec["Default"])
        stated = documented[name]
        if "," in stated:  # a row for two parameters: `a`, `b` | `x`, `y`
            names = re.findall(r"`([^`]+)`", _row_of(name))
            stated = re.findall(r"`([^`]+)`", stated)[names.index(name)]
        assert stated.strip("`") == default or (default == "" and stated == "empty"), name


def _row_of(name: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return next(line for line in text.splitlines() if line.startswith("|") and f"`{name}`" in line)


def test_readme_lists_every_output(template: dict[str, Any]) -> None:
    documented = _readme_table("Stack outputs:", "output")
    assert set(documented) == set(template["Outputs"])
