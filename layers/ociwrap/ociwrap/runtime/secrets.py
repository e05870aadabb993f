"""Documents operators keep secret: in AWS Secrets Manager in Lambda, or in a file locally.

Upstream credentials and the users allowed to pull are read from a secret named
by one setting or a file named by another. Secrets are fetched through
Powertools Parameters and cached for `max_age` seconds, so a rotated secret is
picked up without a new deployment; a file is read again when it changes. A
secret that cannot be read is a 503 that names the setting to check, never a
reason to run without it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ociwrap.runtime import errors
from ociwrap.runtime.errors import RegistryError

DEFAULT_MAX_AGE_SECONDS = 300
Parsed = TypeVar("Parsed")


class SecretDocument:
    """The text of one secret setting: `secret_setting` names a secret, `file_setting` a file."""

    def __init__(
        self,
        secret_setting: str,
        secret_name: str | None,
        file_setting: str,
        file_path: str | None,
        max_age: int = DEFAULT_MAX_AGE_SECONDS,
    ) -> None:
        self.secret_setting = secret_setting
        self.secret_name = secret_name
        self.file_setting = file_setting
        self.file_path = file_path
        self.max_age = max_age
        self._provider: Any = None
        self._file: tuple[float, str] | None = None
        self._lock = threading.Lock()

    @property
    def setting(self) -> str:
        """The setting the document is read by: the secret's when both are set."""
        return self.secret_setting if self.secret_name else self.file_setting

    def text(self) -> str | None:
        """The document (None when neither setting is set); 503 naming the setting if unreadable."""
        if self.secret_name:
            return self._secret()
        if self.file_path:
            return self._read_file()
        return None

    def _unreadable(self, setting: str, why: str) -> RegistryError:
        return errors.storage_unavailable(f"{setting} cannot be read: {why}")

    def _secret(self) -> str:
        from aws_lambda_powertools.utilities import parameters  # only deployments that use it

        from ociwrap.runtime.aws import make_client

        with self._lock:
            if self._provider is None:
                client = make_client("secretsmanager", "the secrets service")
                self._provider = parameters.SecretsProvider(boto3_client=client)
        try:
            value = self._provider.get(self.secret_name, max_age=self.max_age)
        except parameters.exceptions.GetParameterError as exc:
            cause = exc.__cause__ or exc.__context__ or exc
            if isinstance(cause, RegistryError):  # the deadline ran out
                raise cause from exc
            code = getattr(cause, "response", {}).get("Error", {}).get("Code")
            raise self._unreadable(self.secret_setting, code or type(cause).__name__) from exc
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        if not isinstance(value, str):
            raise self._unreadable(self.secret_setting, "the secret holds no text")
        return value

    def _read_file(self) -> str:
        assert self.file_path is not None
        try:
            changed = os.stat(self.file_path).st_mtime
            with self._lock:
                if self._file is None or self._file[0] != changed:
                    with open(self.file_path, encoding="utf-8") as handle:
                        self._file = (changed, handle.read())
                return self._file[1]
        except (OSError, UnicodeDecodeError) as exc:
            raise self._unreadable(self.file_setting, type(exc).__name__) from exc


class ParsedDocument(Generic[Parsed]):
    """A secret document as a value: parsed when its text changes, else the last value.

    `parse` raises ValueError (or a subclass) naming what is wrong; that is a 503 naming
    the setting, for an operator to fix, never a reason to go on without the document.
    """

    def __init__(self, document: SecretDocument, parse: Callable[[str], Parsed], what: str) -> None:
        self.document = document
        self.parse = parse
        self.what = what  # "a usable policy": the message says the setting is not that
        self._parsed: tuple[str, Parsed] | None = None
        self._lock = threading.Lock()

    def value(self) -> Parsed | None:
        """The parsed document; None when neither setting is set."""
        text = self.document.text()
        if text is None:
            return None
        with self._lock:
            if self._parsed is None or self._parsed[0] != text:
                try:
                    self._parsed = (text, self.parse(text))
                except ValueError as exc:
                    raise errors.storage_unavailable(
                        f"{self.document.setting} is not {self.what}: {exc}"
                    ) from exc
            return self._parsed[1]
