"""Who may call what: bearer tokens with a scope, checked before any RPC runs.

`bake` tokens call the Bakery service (Bake, Watch, PackageCode, UploadContents); `admin`
tokens call everything. Health checks and reflection are open. A refused call is answered
by the interceptor itself, so the servicer never sees it and nothing is done.

With no token created yet, every call is allowed, which is only safe on loopback: `check_bind`
refuses any other address until a token exists (`bakery tokens create`).

A call let through reaches the servicer with its caller (the token's name) attached to its
context, so the build queue can take turns between callers without checking the token again:
`caller_of(context)`; ANONYMOUS when the server runs without tokens.
"""

import ipaddress
import logging
from collections.abc import Callable
from typing import Any

import grpc

from frontends.service.slots import ANONYMOUS
from frontends.service.state import ServiceIndex, Token

log = logging.getLogger("bakery.service")

OPEN_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
BAKE_SERVICES = ("/bakery.v1.Bakery/",)
"""Methods a `bake` token may call; everything else that is not open needs `admin`."""


class InsecureBindError(Exception):
    """The server would accept unauthenticated calls from the network."""


def is_loopback(host: str) -> bool:
    """Whether `host` (as given to bind) only accepts connections from this machine."""
    name = host.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name or a wildcard: reachable from elsewhere


def check_bind(host: str, index: ServiceIndex) -> None:
    """Refuse a non-loopback bind while there are no tokens; say when auth is off."""
    if index.has_tokens():
        return
    if not is_loopback(host):
        raise InsecureBindError(
            f"refusing to listen on {host} without auth: no tokens exist, so anyone who can "
            "reach the port could bake and prune. Create one first (`bakery tokens create "
            "--scope admin NAME`) or listen on 127.0.0.1."
        )
    log.warning(
        "no tokens exist: serving WITHOUT auth, on loopback (%s) only; "
        "`bakery tokens create` turns auth on",
        host,
    )


def _refusal(
    code: grpc.StatusCode, message: str, like: grpc.RpcMethodHandler
) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `like` that only aborts; requests stay unparsed."""

    def refuse(_request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, message)

    if like.request_streaming and like.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse)
    if like.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse)
    if like.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse)
    return grpc.unary_unary_rpc_method_handler(refuse)


class _CallerContext:
    """A call's context that also says who made the call; everything else is the context's."""

    def __init__(self, context: grpc.ServicerContext, caller: str) -> None:
        self._context = context
        self.bakery_caller = caller

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def caller_of(context: object) -> str:
    """Who made this call: the name of the token `TokenCheck` let through; ANONYMOUS for a
    server without tokens."""
    return getattr(context, "bakery_caller", ANONYMOUS)


def _with_caller(handler: grpc.RpcMethodHandler, caller: str) -> grpc.RpcMethodHandler:
    """`handler`, its servicer method seeing a context that names `caller`."""

    def wrap(behavior: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        return lambda request, context: behavior(request, _CallerContext(context, caller))

    codecs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(wrap(handler.stream_stream), **codecs)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(wrap(handler.stream_unary), **codecs)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(wrap(handler.unary_stream), **codecs)
    return grpc.unary_unary_rpc_method_handler(wrap(handler.unary_unary), **codecs)


class TokenCheck(grpc.ServerInterceptor):
    """Reads `authorization: Bearer <token>` and the token's scope from the index."""

    def __init__(self, index: ServiceIndex) -> None:
        self.index = index

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        method: str = details.method
        if handler is None or method.startswith(OPEN_SERVICES) or not self.index.has_tokens():
            return handler
        checked = self._check(method, dict(details.invocation_metadata or ()))
        if isinstance(checked, Token):
            return _with_caller(handler, checked.name)
        return _refusal(*checked, like=handler)

    def _check(
        self, method: str, metadata: dict[str, str | bytes]
    ) -> Token | tuple[grpc.StatusCode, str]:
        """The caller's token if it may call `method`, else the refusal's status and why."""
        header = metadata.get("authorization")
        scheme, _, secret = str(header or "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return (
                grpc.StatusCode.UNAUTHENTICATED,
                "this server needs a token: send `authorization: Bearer <token>` "
                "(set BAKERY_TOKEN; an admin creates one with `bakery tokens create`)",
            )
        token = self.index.token(secret.strip())
        if token is None:
            return grpc.StatusCode.UNAUTHENTICATED, "the token is not known to this server"
        if token.scope == "admin" or method.startswith(BAKE_SERVICES):
            return token
        return (
            grpc.StatusCode.PERMISSION_DENIED,
            f"token {token.name!r} has scope {token.scope!r}; {method} needs an admin token",
        )
