"""Logins for test registries: htpasswd bcrypt lines and Docker `config.json` auths.

Registry 2.8's htpasswd auth and ociwrap's `REGISTRY_AUTH=basic` both read the
bcrypt lines `htpasswd -B` writes (`user:$2y$...`); upstream logins for ociwrap
are Docker's `{"auths": {...}}` document.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

import bcrypt


def htpasswd_line(user: str, password: str, cost: int = 4) -> str:
    """`user:$2y$04$...`, as `htpasswd -B` writes it (bcrypt's lowest cost keeps tests fast)."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()
    return f"{user}:{hashed.replace('$2b$', '$2y$', 1)}"


def docker_auths(logins: Mapping[str, tuple[str, str]]) -> str:
    """A `config.json` document: {registry key: (user, password)} as `auth` entries."""
    auths = {
        key: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
        for key, (user, password) in logins.items()
    }
    return json.dumps({"auths": auths})
