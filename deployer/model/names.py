"""Which names are valid where apps run: the rules Docker and Kubernetes both accept.

App configuration is checked against them once (`config.py`), and the Kubernetes renderer
checks what it is handed against the same rules, so the two can never disagree.
"""

import re

_DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_app_name(value: str) -> bool:
    """A DNS-1123 label starting with a letter: container, Service and host name at once."""
    return len(value) <= 63 and bool(_DNS_LABEL.fullmatch(value))


def is_secret_name(value: str) -> bool:
    """A DNS-1123 subdomain, as Kubernetes Secret names are."""
    return len(value) <= 253 and bool(_DNS_SUBDOMAIN.fullmatch(value))


def is_label_value(value: str) -> bool:
    return len(value) <= 63 and bool(_LABEL_VALUE.fullmatch(value))


def is_label_key(key: str) -> bool:
    """`name` or `dns.prefix/name`."""
    prefix, _, name = key.rpartition("/")
    if prefix and not is_secret_name(prefix):
        return False
    return len(name) <= 63 and bool(_LABEL_NAME.fullmatch(name))


def is_env_name(value: str) -> bool:
    """A POSIX shell variable name: what every image's shell can export."""
    return bool(_ENV_NAME.fullmatch(value))
