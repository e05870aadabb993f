"""WRAPPER_POLICY as a value: read from its secret or file, parsed again when it changes."""

from __future__ import annotations

from ociwrap.image.jsondoc import parse_json
from ociwrap.runtime.secrets import ParsedDocument, SecretDocument
from ociwrap.signing.policy import Policy, parse_policy


class PolicySource:
    """The policy document from its secret or file, parsed again only when it changes."""

    def __init__(self, document: SecretDocument) -> None:
        self.parsed = ParsedDocument(document, _parse_policy, "a usable policy")

    def policy(self) -> Policy | None:
        return self.parsed.value()


def _parse_policy(text: str) -> Policy:
    return parse_policy(parse_json(text.encode()))
