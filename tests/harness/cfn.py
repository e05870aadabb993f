"""CloudFormation templates as the tests see them: loaded, transformed by SAM, evaluated.

`load` reads template.yaml as SAM does, the short-form tags (`!Ref`, `!Sub`, ...) as the
long forms. `transform` runs SAM's own translator (samtranslator, installed with the SAM
CLI) offline, as CloudFormation runs the `AWS::Serverless-2016-10-31` transform on
deploy: with the parameter values, so what SAM resolves at transform time (`Tracing`,
`AutoPublishAlias`) is resolved. `Stack` then evaluates what CloudFormation resolves at
deploy time (conditions, `Ref`, `Fn::Sub`, `Fn::If`, `Fn::Join`, ...) for one set of
parameter values; a reference to a resource evaluates to whatever `physical` says that
resource's id is, so a test can model which resources get new ids.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

NO_VALUE = object()
PSEUDO = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "ociwrap",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}
_SUB = re.compile(r"\$\{([^}!][^}]*)\}")


def load(path: Path) -> dict[str, Any]:
    """The template at `path`, intrinsics in their long form, as SAM reads it."""
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(path.read_text(encoding="utf-8"))


#: SAM asks IAM for the ARNs of the AWS managed policies it attaches; offline, they are known.
MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": (
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    ),
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}


def transform(
    template: Mapping[str, Any],
    parameters: Mapping[str, Any],
    *,
    code_uri: str = "s3://deploy-bucket/code.zip",
    layer_uri: str = "s3://deploy-bucket/layer.zip",
) -> dict[str, Any]:
    """SAM's transform of `template`, packaged as `sam package` leaves it.

    `sam package` uploads the function's code and the layer's contents and replaces their
    local paths by S3 locations named after the zip's MD5: new contents, new location.
    """
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    packaged = copy.deepcopy(dict(template))
    for resource in packaged["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = code_uri
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = layer_uri
    session = boto3.session.Session(
        region_name=PSEUDO["AWS::Region"], aws_access_key_id="x", aws_secret_access_key="x"
    )
    translator = Translator(None, Parser(), boto_session=session)
    return translator.translate(
        packaged,
        parameter_values=dict(parameters),
        get_managed_policy_map=lambda: dict(MANAGED_POLICIES),
    )


def parameter_values(template: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter's value: the override, else the default (as CloudFormation does)."""
    values: dict[str, Any] = {}
    for name, spec in template["Parameters"].items():
        value = overrides.get(name, spec.get("Default"))
        if value is None:
            raise ValueError(f"parameter {name} has no default and no value")
        if spec["Type"] == "CommaDelimitedList" and isinstance(value, str):
            value = [] if value == "" else [part.strip() for part in value.split(",")]
        values[name] = value
    unknown = set(overrides) - set(values)
    if unknown:
        raise ValueError(f"no such parameters: {sorted(unknown)}")
    return values


def violations(template: Mapping[str, Any], parameters: Mapping[str, Any]) -> list[str]:
    """The problems CloudFormation would refuse these values for, before creating anything:
    allowed values, patterns and bounds of each parameter, and the template's Rules."""
    problems: list[str] = []
    for name, spec in template["Parameters"].items():
        value = parameters[name]
        text = str(value) if not isinstance(value, list) else ",".join(value)
        if "AllowedValues" in spec and value not in spec["AllowedValues"]:
            problems.append(f"{name}: not one of {spec['AllowedValues']}")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], text):
            problems.append(f"{name}: {spec.get('ConstraintDescription', 'pattern')}")
        if "MaxLength" in spec and len(text) > int(spec["MaxLength"]):
            problems.append(f"{name}: longer than {spec['MaxLength']}")
        if spec["Type"] == "Number":
            number = float(value)
            if "MinValue" in spec and number < float(spec["MinValue"]):
                problems.append(f"{name}: under {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                problems.append(f"{name}: over {spec['MaxValue']}")
    stack = Stack(template, parameters)
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not stack.value(rule["RuleCondition"]):
            continue
        for assertion in rule["Assertions"]:
            if not stack.value(assertion["Assert"]):
                problems.append(f"{name}: {assertion.get('AssertDescription', '')}".strip())
    return problems


class Stack:
    """One template with one set of parameter values, evaluated as CloudFormation would."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, Any],
        physical: Callable[[str], Any] | None = None,
    ) -> None:
        self.template = template
        self.parameters = dict(parameters)
        self.physical = physical or (lambda logical_id: f"<{logical_id}>")

    def condition(self, name: str) -> bool:
        return bool(self.value(self.template["Conditions"][name]))

    def resource(self, logical_id: str) -> dict[str, Any]:
        """A resource's properties, evaluated; `{}` when its condition is false."""
        resource = self.template["Resources"][logical_id]
        if "Condition" in resource and not self.condition(resource["Condition"]):
            return {}
        return self.value(resource.get("Properties", {}))

    def value(self, node: Any) -> Any:
        """`node` with every intrinsic function evaluated and `AWS::NoValue` removed."""
        if isinstance(node, list):
            return [item for item in (self.value(i) for i in node) if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                target, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return f"{self.physical(target)}.{attribute}"
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                separator, items = arg
                return separator.join(str(item) for item in self.value(items))
            if key == "Fn::Select":
                index, items = arg
                return self.value(items)[int(self.value(index))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self.value(text)).split(separator)
            if key == "Fn::If":
                name, chosen, otherwise = arg
                return self.value(chosen if self.condition(name) else otherwise)
            if key == "Fn::Equals":
                left, right = (self.value(side) for side in arg)
                return _canonical(left) == _canonical(right)
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::And":
                return all(self.value(part) for part in arg)
            if key == "Fn::Or":
                return any(self.value(part) for part in arg)
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                raise NotImplementedError(f"{key} is not evaluated here")
        out = {}
        for key, item in node.items():
            evaluated = self.value(item)
            if evaluated is not NO_VALUE:
                out[key] = evaluated
        return out

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.template["Resources"]:
            return self.physical(name)
        raise KeyError(f"Ref to unknown {name}")

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else arg
        local = {name: self.value(value) for name, value in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in local:
                return str(local[name])
            if "." in name and name.split(".", 1)[0] in self.template["Resources"]:
                target, attribute = name.split(".", 1)
                return f"{self.physical(target)}.{attribute}"
            value = self._ref(name)
            if isinstance(value, list):
                raise ValueError(f"${{{name}}} is a list: Fn::Sub takes strings only")
            return str(value)

        return _SUB.sub(replace, text)


def _canonical(value: Any) -> Any:
    """Parameters are strings to CloudFormation: 0 and "0" are equal, lists compare joined."""
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)
