"""Keeps a process worker's servers on loopback, behind the app's proxy and its auth.

Not imported by the deployer: `env.py` copies this file into every host env as
`_bakery_loopback.py`, with a `.pth` line that imports it when the env's interpreter starts,
so it runs inside the workers and must work on any Python 3 the image was baked for.

With `BAKERY_LOOPBACK_ONLY=1` (the runtime sets it for its workers; their children inherit
it), a TCP socket bound to a port on any address but loopback (`0.0.0.0`, `::`, a host name,
an interface's address) is bound to loopback instead: an app written to listen on every
interface, as apps for containers are, then cannot be reached from the network around the
proxy. An IPv6 socket gets `::ffff:127.0.0.1`, where the proxy connects, else `::1`.
Sockets bound to port 0 (a client choosing its source address) are left alone. Servers
that bind outside Python's `socket` module (uvloop, non-Python commands) are not covered:
the runtime reports a worker whose port listens beyond loopback as failed.
"""

import ipaddress
import os
import socket

VARIABLE = "BAKERY_LOOPBACK_ONLY"
"""Set to 1 in a worker's environment, the guard binds its servers to loopback."""


def _is_loopback(host):
    try:
        address = ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return False  # a host name: bound to loopback, where "localhost" is anyway
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def _install():
    original_bind = socket.socket.bind

    def bind(self, address):
        if (
            self.family in (socket.AF_INET, socket.AF_INET6)
            and self.type == socket.SOCK_STREAM
            and isinstance(address, tuple)
            and len(address) >= 2
            and address[1] != 0
            and not _is_loopback(address[0])
        ):
            port = address[1]
            if self.family == socket.AF_INET:
                return original_bind(self, ("127.0.0.1", port))
            try:
                return original_bind(self, ("::ffff:127.0.0.1", port))
            except OSError:  # an IPv6-only socket cannot take an IPv4 address
                return original_bind(self, ("::1", port))
        return original_bind(self, address)

    socket.socket.bind = bind  # type: ignore[method-assign]  # the guard itself


if os.environ.get(VARIABLE) == "1":
    _install()
