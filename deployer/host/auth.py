"""API auth shared by every runtime: a random token, the header that carries it, its htpasswd.

The proxy in front of an app (ingress-nginx on Kubernetes, the local nginx elsewhere) does the
checking with HTTP basic auth against an htpasswd line in nginx's salted-SHA1 `{SSHA}` scheme;
a 256-bit random token makes the fast hash safe. `DeployedApp.auth()` hands out the header.
"""

import base64
import hashlib
import secrets

API_USER = "bakery"


def new_token() -> str:
    """A fresh API token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def api_auth_headers(token: str) -> dict[str, str]:
    """What `DeployedApp.auth()` returns for an API-auth app."""
    credentials = base64.b64encode(f"{API_USER}:{token}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


def htpasswd_line(token: str, salt_from: str) -> str:
    """The line nginx checks `token` against; the salt comes from `salt_from` (the app's
    identity), so rendering it again gives the same bytes."""
    salt = hashlib.sha256(salt_from.encode()).digest()[:8]
    digest = hashlib.sha1(token.encode() + salt).digest()
    return f"{API_USER}:{{SSHA}}{base64.b64encode(digest + salt).decode()}\n"
