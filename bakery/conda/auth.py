"""Credentials for conda channels behind HTTP auth, kept out of everything a bake writes.

Two places give them, both JSON keyed by host name (`mirror.example.com`, or `*.example.com`
for its subdomains), in rattler's credentials format:

- `BAKERY_CONDA_AUTH`: the JSON itself, e.g. `{"mirror.example.com": {"BearerToken": "..."}}`
  or `{"mirror.example.com": {"BasicHTTP": {"username": "...", "password": "..."}}}`: a
  secret handed to a process (CI, a Kubernetes Secret) without a file;
- rattler's own storage: the file `RATTLER_AUTH_FILE` names (also `CondaToken`), else
  `~/.rattler/credentials.json`, the keyring, `~/.netrc`.

Both go on every request rattler makes for a bake (repodata and packages) through one
`Client`; rattler's default client used none of them. Channel URLs never carry credentials
(they are refused: a URL ends up in the spec, the lock and the image), and every error text
that comes back from rattler is redacted before it is shown or kept.
"""

import base64
import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bakery.errors import ImageBakingException, shorten
from stagekit.errors import ErrorKind

ENV_VARIABLE = "BAKERY_CONDA_AUTH"
RATTLER_FILE = "RATTLER_AUTH_FILE"
_HOST = re.compile(r"(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
_REFUSED = re.compile(r"\((40[13]) [^)]*\) for url \((\S+?)\)")
_USERINFO = re.compile(r"(\w+://)[^/@\s]+@")
_CONDA_TOKEN = re.compile(r"/t/[^/\s]+")
HIDDEN = "***"


@dataclass(frozen=True)
class Credentials:
    """The `Authorization` header for each host `BAKERY_CONDA_AUTH` names, and the secrets
    to hide from every text the bake shows."""

    headers: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()

    def header_for(self, host: str) -> str | None:
        """The header for `host`: its own entry, else the nearest `*.domain` one."""
        if host in self.headers:
            return self.headers[host]
        parts = host.split(".")
        for start in range(1, len(parts)):
            wildcard = "*." + ".".join(parts[start:])
            if wildcard in self.headers:
                return self.headers[wildcard]
        return None

    def redact(self, text: str) -> str:
        """`text` with every secret, URL user info and conda token path replaced."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, HIDDEN)
        text = _USERINFO.sub(rf"\1{HIDDEN}@", text)
        return _CONDA_TOKEN.sub(f"/t/{HIDDEN}", text)


def configured_credentials() -> Credentials:
    """The credentials of `BAKERY_CONDA_AUTH` (none when unset); a malformed value is an
    ImageBakingException that names the host at fault, never a secret."""
    text = os.environ.get(ENV_VARIABLE, "").strip()
    if not text:
        return Credentials()
    try:
        entries = json.loads(text)
    except ValueError:
        raise _malformed("it is not JSON") from None
    if not isinstance(entries, dict):
        raise _malformed("it is not a JSON object of host -> credentials")
    headers: dict[str, str] = {}
    secrets: list[str] = []
    for host, entry in entries.items():
        if not _HOST.fullmatch(host):
            raise _malformed(
                f"{shorten(repr(host), 80)} is not a host name (no scheme, port or path; "
                "*.example.com for every subdomain)"
            )
        headers[host.lower()], found = _header(host, entry)
        secrets.extend(found)
    return Credentials(headers, tuple(s for s in secrets if s))


def _header(host: str, entry: Any) -> tuple[str, list[str]]:
    """The Authorization header of one entry and the secrets it holds."""
    if isinstance(entry, dict) and set(entry) == {"BearerToken"}:
        token = entry["BearerToken"]
        if isinstance(token, str) and token:
            return f"Bearer {token}", [token]
    if isinstance(entry, dict) and set(entry) == {"BasicHTTP"}:
        basic = entry["BasicHTTP"]
        if (
            isinstance(basic, dict)
            and set(basic) == {"username", "password"}
            and all(isinstance(v, str) for v in basic.values())
        ):
            pair = base64.b64encode(f"{basic['username']}:{basic['password']}".encode()).decode()
            return f"Basic {pair}", [basic["password"], pair]
    raise _malformed(
        f'the entry for {host} is not {{"BearerToken": "..."}} or {{"BasicHTTP": '
        '{"username": "...", "password": "..."}} (a CondaToken goes in rattler\'s '
        f"credentials file, {RATTLER_FILE})"
    )


def _malformed(reason: str) -> ImageBakingException:
    return ImageBakingException(f"{ENV_VARIABLE} is malformed: {reason}.")


_CLIENTS: dict[tuple[Any, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def client(credentials: Credentials) -> Any:
    """rattler's HTTP client for `credentials` and rattler's storage as they are now: made
    once (tens of ms: it loads the system's CA certificates) and shared by the solve and the
    install of every bake, anew when either changes (rattler reads its credentials file
    once per client)."""
    key = (tuple(sorted(credentials.headers.items())), _storage_state())
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS.clear()
            _CLIENTS[key] = _new_client(credentials)
        return _CLIENTS[key]


def _storage_state() -> tuple[Any, ...]:
    """What says that rattler's credentials files changed: their paths, sizes and mtimes."""
    paths = [os.environ.get(RATTLER_FILE), os.path.expanduser("~/.rattler/credentials.json")]
    state: list[Any] = []
    for path in filter(None, paths):
        try:
            found = os.stat(path)
        except OSError:
            state.append((path, None))
        else:
            state.append((path, found.st_size, found.st_mtime_ns))
    return tuple(state)


def _new_client(credentials: Credentials) -> Any:
    """Retries, rattler's credential storage, then the headers of `credentials` (which win
    for a host both name): channels are http(s) or file URLs, so none of rattler's OCI, GCS
    or S3 middlewares."""
    from rattler.networking import (
        AddHeadersMiddleware,
        AuthenticationMiddleware,
        Client,
        RetryMiddleware,
    )

    middlewares: list[Any] = [RetryMiddleware(), AuthenticationMiddleware()]
    if credentials.headers:

        def headers(host: str, _path: str) -> dict[str, str] | None:
            header = credentials.header_for(host.lower())
            return None if header is None else {"Authorization": header}

        middlewares.append(AddHeadersMiddleware(headers))
    return Client(middlewares)


def channel_url(channel: str) -> str:
    """The base URL of a channel name or URL, with a trailing slash."""
    from rattler import Channel

    return str(Channel(channel).base_url)


def access_refused(
    error: str, channels: Iterable[str], credentials: Credentials
) -> ImageBakingException | None:
    """The typed error for a channel that answered 401/403 in rattler's `error` text
    (None if it says nothing of the kind): which channel, and what to set."""
    found = _REFUSED.search(error)
    if found is None:
        return None
    status, url = found[1], credentials.redact(found[2])
    channel = next((c for c in channels if url.startswith(channel_url(c))), None)
    shown = (channel or url.rsplit("/", 2)[0]).rstrip("/")
    host = (urlsplit(url).hostname or "").lower()
    source = _source_of(host, credentials)
    what = "401 Unauthorized" if status == "401" else "403 Forbidden"
    if source is None:
        said = f"no credentials for host {host} were given"
    else:
        said = f"it refused the credentials {source} gives for host {host}"
    example = '{"' + host + '": {"BearerToken": "..."}}'
    return ImageBakingException(
        f"The conda channel {shorten(shown, 200)} refused access ({what}): {said}. Set "
        f"{ENV_VARIABLE} to a JSON of host -> credentials, e.g. '{example}' or "
        '{"BasicHTTP": {"username": "...", "password": "..."}}, or add them to rattler\'s '
        f"credentials file ({RATTLER_FILE}).",
        details=credentials.redact(error),
        kind=ErrorKind.INVALID_INPUT,
    )


def _source_of(host: str, credentials: Credentials) -> str | None:
    """Where the credentials sent to `host` came from, if any were."""
    if credentials.header_for(host) is not None:
        return ENV_VARIABLE
    path = os.environ.get(RATTLER_FILE)
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                hosts = json.load(handle)
        except (OSError, ValueError):
            return None
        if isinstance(hosts, dict):
            known = Credentials(dict.fromkeys((str(k).lower() for k in hosts), "known"))
            if known.header_for(host) is not None:
                return RATTLER_FILE
    return None
