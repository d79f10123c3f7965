"""The API as original-dialect programs see it: `str` where the original took and returned data.

In the original's Python 2, `str` was a byte string: messages, file contents and random bytes were all `str`.
A translated program still uses `str` for them, so for the original dialect the calls that carry data are
wrapped here, at the API boundary, and nowhere else: data going in as `str` is encoded as latin-1 (each
character one byte, so every byte string the program builds round-trips exactly); data coming out as bytes
is decoded as latin-1 into `str`. A `str` holding characters above U+00FF cannot be a Python 2 byte string; it
is passed on unchanged (the call encodes it as UTF-8, as it does for Python 3 programs).

Objects handed out (sockets, files, UDP and TCP listeners) are rebuilt as `api_object`s of the same kind with
the data methods wrapped and the others passed through; no API call takes such an object back, so nothing
compares their identity. The wrappers hold the inner objects only in closures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from seattle.vessel.child.api.checks import api_call, api_object

if TYPE_CHECKING:
    from seattle.vessel.child.context import VesselContext

#: The encoding that maps Python 2 byte strings onto str and back, one character per byte.
ENCODING = "latin-1"


def to_bytes(value: object) -> object:
    """`value` as the bytes a Python 2 str held; anything else (including wide text) unchanged."""
    if type(value) is str:
        try:
            return value.encode(ENCODING)
        except UnicodeEncodeError:
            return value
    return value


def to_str(value: object) -> object:
    """Bytes a call returned, as the str a Python 2 program expects; anything else unchanged."""
    if type(value) is bytes:
        return value.decode(ENCODING)
    return value


def _data_argument(function: Callable[..., Any], position: int, keyword: str) -> Callable[..., Any]:
    """`function` with its data argument (given by position or keyword) turned into bytes."""

    def call(*args: Any, **kwargs: Any) -> Any:
        if len(args) > position:
            args = (*args[:position], to_bytes(args[position]), *args[position + 1 :])
        elif keyword in kwargs:
            kwargs[keyword] = to_bytes(kwargs[keyword])
        return function(*args, **kwargs)

    return _named(call, function)


def _str_result(function: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return to_str(function(*args, **kwargs))

    return _named(call, function)


def _named(call: Callable[..., Any], like: Callable[..., Any]) -> Callable[..., Any]:
    call.__name__ = call.__qualname__ = like.__name__
    return call


def _method(obj: object, name: str) -> Callable[..., Any]:
    """`obj.name` called through `obj` on every call, so the wrapper keeps `obj` (and whatever it closes when it
    is dropped) alive exactly as long as the program holds the wrapper."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(obj, name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


def _rebuild(obj: object, kind: str, names: tuple[str, ...], wrap: dict[str, Callable[..., Any]]) -> object:
    """A new api_object of `kind` with `obj`'s methods, those in `wrap` replaced by their wrapped versions."""
    return api_object(kind, {name: wrap.get(name) or _method(obj, name) for name in names})


def stream(sock: object) -> object:
    """A TCP socket (V2, or V1's socket-like object) whose recv returns str and whose send takes str."""
    return _rebuild(sock, "socket", ("recv", "send", "close"), {
        "recv": _str_result(_method(sock, "recv")),
        "send": _data_argument(_method(sock, "send"), 0, "message"),
    })


def adapt(ctx: VesselContext, api: dict[str, object]) -> dict[str, object]:
    """A copy of the exported `api` names with the data-carrying calls wrapped for the original dialect."""
    adapted = dict(api)

    def wrapped(name: str, function: Callable[..., Any]) -> None:
        adapted[name] = api_call(ctx, name)(function)

    def call_of(name: str) -> Callable[..., Any]:
        function = api[name]
        assert callable(function), name
        return function

    sendmessage, sendmess, randombytes = call_of("sendmessage"), call_of("sendmess"), call_of("randombytes")
    adapted["sendmessage"] = _data_argument(sendmessage, 2, "message")
    adapted["sendmess"] = _data_argument(sendmess, 2, "message")
    adapted["randombytes"] = _str_result(randombytes)

    listenformessage, openconnection = call_of("listenformessage"), call_of("listenforconnection")
    connect, openconn = call_of("openconnection"), call_of("openconn")
    openfile, recvmess, waitforconn = call_of("openfile"), call_of("recvmess"), call_of("waitforconn")

    def udp_server(localip: object, localport: object) -> object:
        server = listenformessage(localip, localport)
        getmessage = _method(server, "getmessage")

        def message() -> tuple[object, ...]:
            ip, port, data = getmessage()
            return ip, port, to_str(data)

        return _rebuild(server, "UDPServerSocket", ("getmessage", "close"), {"getmessage": message})

    def tcp_server(localip: object, localport: object) -> object:
        server = openconnection(localip, localport)
        getconnection = _method(server, "getconnection")

        def connection() -> tuple[object, ...]:
            ip, port, sock = getconnection()
            return ip, port, stream(sock)

        return _rebuild(server, "TCPServerSocket", ("getconnection", "close"), {"getconnection": connection})

    def file_object(filename: object, create: object) -> object:
        handle = openfile(filename, create)
        return _rebuild(handle, "file", ("readat", "writeat", "close"), {
            "readat": _str_result(_method(handle, "readat")),
            "writeat": _data_argument(_method(handle, "writeat"), 0, "data"),
        })

    def recv_messages(localip: object, localport: object, function: object) -> object:
        if not callable(function):
            return recvmess(localip, localport, function)  # the call refuses it, with its own message

        def deliver(srcip: object, srcport: object, message: object, handle: object) -> object:
            return function(srcip, srcport, to_str(message), handle)

        return recvmess(localip, localport, deliver)

    def wait_for_connections(localip: object, localport: object, function: object) -> object:
        if not callable(function):
            return waitforconn(localip, localport, function)

        def deliver(ip: object, port: object, sock: object, handle: object, listen_handle: object) -> object:
            return function(ip, port, stream(sock), handle, listen_handle)

        return waitforconn(localip, localport, deliver)

    wrapped("listenformessage", udp_server)
    wrapped("listenforconnection", tcp_server)
    wrapped("openconnection", lambda *args, **kwargs: stream(connect(*args, **kwargs)))
    wrapped("openconn", lambda *args, **kwargs: stream(openconn(*args, **kwargs)))
    wrapped("openfile", file_object)
    wrapped("recvmess", recv_messages)
    wrapped("waitforconn", wait_for_connections)
    return adapted
