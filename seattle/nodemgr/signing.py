"""Node manager requests and responses: the signed envelope, its checks, the public form, the response form.

Sans-IO: the caller passes the time and the nonce in, and frames the results with `frames.encode_frame`.

A signed request is one byte string, the exact bytes the signature covers and that travel in the frame (as a
msgpack bin), so the node verifies what it received and never re-encodes anything:

    signature (64) ‖ CONTEXT ‖ caller public key (32) ‖ envelope (msgpack map)
    envelope = {"call": str, "args": list | map, "dest": node public key (32 bytes),
                "ts": seconds since the epoch, "exp": seconds since the epoch, "nonce": 16 random bytes}

The signature is Ed25519 over everything after it (libsodium's combined mode, so one `crypto_sign_open` call
checks the received bytes as they are, with nothing to rebuild). CONTEXT keeps a signature made for
anything else with the same key (an advertisement, say) from ever being accepted as a request.

`RequestVerifier.verify` checks, in this order, and stops at the first failure:

    malformed          too short to hold a signature and a key
    bad_signature      the signature does not verify with the key the request names
    malformed          wrong context, or an envelope that is not the map above
    wrong_destination  `dest` is not this node's key (a request for another node, replayed here)
    expired            exp + clock_skew is in the node's past
    not_yet_valid      ts - clock_skew is in the node's future
    too_long_lifetime  exp - ts exceeds max_lifetime (it bounds how long nonces must be remembered)
    <authorize>        the caller's `authorize` hook: the node refuses a signer without rights on the call
                       here (no_such_call, bad_arguments, no_such_vessel, insufficient_permissions)
    replayed           this caller's nonce was already accepted and has not expired
    busy               the replay cache is full of unexpired nonces

so nothing about a request is believed before its signature is, and a request whose signer has no right to
its call leaves nothing behind: rights are checked before the replay cache keeps a nonce. A public call (one
anyone may make unsigned) is not kept in the replay cache either: replaying it gains nothing.

Replay protection is by random nonce, not by sequence number or last timestamp as in the original, so any
number of clients can use one key at once.

A public request is the unsigned map {"call": str, "args": list | map}; a frame holding a bin is a signed
request, one holding a map is a public one (`open_request`). A response is the map
{"status": "success" | "error" | "warning", "code": str, "message": str, "result": any}.
"""

from __future__ import annotations

import heapq
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from seattle.boundedmsgpack import REQUEST_LIMITS
from seattle.envelope import BAD_SIGNATURE, MALFORMED, SIGNATURE_SIZE, EnvelopeRejected, finite, seal, unseal
from seattle.keys import PUBLIC_KEY_SIZE, Identity, PublicKey
from seattle.refusal import Refused

CONTEXT = b"seattle/nodemgr/request/v1\x00"
NONCE_SIZE = 16
_ENVELOPE_FIELDS = frozenset({"call", "args", "dest", "ts", "exp", "nonce"})

DEFAULT_LIFETIME = 60.0
DEFAULT_CLOCK_SKEW = 30.0
DEFAULT_MAX_LIFETIME = 3600.0
#: A nonce is kept for lifetime + skew (90 s by default), so 3,000 requests/s sustained need 270,000 entries.
#: Each costs about 220 bytes: the cache never grows past about 66 MB, and only under that load.
DEFAULT_REPLAY_CAPACITY = 300_000

# Stable machine-readable codes of rejected requests, in the order the checks run.
WRONG_DESTINATION = "wrong_destination"
EXPIRED = "expired"
NOT_YET_VALID = "not_yet_valid"
TOO_LONG_LIFETIME = "too_long_lifetime"
REPLAYED = "replayed"
BUSY = "busy"
CHECK_ORDER = (
    MALFORMED, BAD_SIGNATURE, WRONG_DESTINATION, EXPIRED, NOT_YET_VALID, TOO_LONG_LIFETIME, REPLAYED, BUSY
)

SUCCESS = "success"
ERROR = "error"
WARNING = "warning"
OK_CODE = "ok"
#: A connection over its source's (or the node's) budget: refused in clear, before the channel's handshake.
TOO_MANY_CONNECTIONS = "too_many_connections"
_STATUSES = (SUCCESS, ERROR, WARNING)
_RESPONSE_FIELDS = frozenset({"status", "code", "message", "result"})

#: Bytes of a frame body enough to read the key a signed request claims: bin32 header, signature, context, key.
SIGNER_PREFIX = 5 + SIGNATURE_SIZE + len(CONTEXT) + PUBLIC_KEY_SIZE
_BIN_HEADERS = {0xC4: 2, 0xC5: 3, 0xC6: 5}

#: Checks a signed request's call and arguments against its signer's rights, after the signature and the
#: times pass and before the replay cache: raises RequestRejected, or says whether the request needs replay
#: protection (False for a public call).
Authorize = Callable[[PublicKey, str, "list[Any] | dict[str, Any]"], bool]

_CALL_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_CODE_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")


class RequestRejected(Refused):
    """The node refuses a request: `code` is one of CHECK_ORDER, `message` tells the sender what to do."""

    def response(self) -> dict[str, Any]:
        return error(self.code, self.message)


class MalformedResponse(ValueError):
    """A reply that is not the response map; the text names the part that is wrong."""


@dataclass(frozen=True)
class VerifiedRequest:
    """A request whose signature, destination, freshness and uniqueness have all been checked."""

    caller: PublicKey
    call: str
    args: list[Any] | dict[str, Any]
    nonce: bytes
    timestamp: float
    expires: float


@dataclass(frozen=True)
class PublicRequest:
    """An unsigned request; only calls the node declares public may be served from one."""

    call: str
    args: list[Any] | dict[str, Any]


@dataclass(frozen=True)
class Response:
    status: str
    code: str
    message: str
    result: Any


# --- building requests ------------------------------------------------------------------------------------


def sign_request(
    identity: Identity,
    destination: PublicKey,
    call: str,
    args: list[Any] | dict[str, Any],
    *,
    now: float,
    nonce: bytes,
    lifetime: float = DEFAULT_LIFETIME,
) -> bytes:
    """The signed request bytes to send to the node whose key is `destination`.

    `now` is the caller's clock (seconds since the epoch) and `nonce` must be NONCE_SIZE fresh random bytes
    (`os.urandom(NONCE_SIZE)`); a nonce reused within a request's lifetime gets the second request refused.
    """
    if not isinstance(identity, Identity):
        raise TypeError(f"identity must be an Identity, not {type(identity).__name__}")
    if not isinstance(destination, PublicKey):
        raise TypeError(f"destination must be a PublicKey, not {type(destination).__name__}")
    _check_call(call)
    _check_args(args)
    now = finite("now", now)
    lifetime = finite("lifetime", lifetime)
    if lifetime <= 0:
        raise ValueError(f"lifetime must be positive, got {lifetime}")
    if not isinstance(nonce, bytes) or len(nonce) != NONCE_SIZE:
        raise ValueError(f"nonce must be {NONCE_SIZE} random bytes, got {nonce!r:.60}")
    fields = {"call": call, "args": args, "dest": destination.raw, "ts": now, "exp": now + lifetime}
    return seal(identity, CONTEXT, {**fields, "nonce": nonce})


def public_request(call: str, args: list[Any] | dict[str, Any]) -> dict[str, Any]:
    """The unsigned request map to send for a public call."""
    _check_call(call)
    _check_args(args)
    return {"call": call, "args": args}


# --- checking requests ------------------------------------------------------------------------------------


class ReplayCache:
    """The nonces of accepted requests, each kept until its request could no longer pass the expiry check.

    Memory is bounded: entries sit in a heap ordered by when they may be forgotten, and expired ones are
    dropped first. When the cache is full of nonces that are all still valid, the new request is refused
    (`busy`) rather than an old nonce forgotten early: forgetting one would let its request be replayed,
    turning a load problem into a security hole, while `busy` only asks the client to retry.

    `forgotten_until` is the latest deadline of any forgotten nonce. A request whose deadline is not later
    is refused as expired even if the clock has been set back, so a clock step never reopens a window.
    """

    def __init__(self, capacity: int) -> None:
        if type(capacity) is not int or capacity < 1:
            raise ValueError(f"replay_capacity must be a positive integer, got {capacity!r}")
        self.capacity = capacity
        self.forgotten_until = -math.inf
        self._deadlines: dict[bytes, float] = {}
        self._heap: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._deadlines)

    def admit(self, key: bytes, deadline: float, now: float) -> RequestRejected | None:
        """Remember `key` until `deadline`, or say why not (expired, replayed, busy). Thread-safe."""
        with self._lock:
            heap = self._heap
            while heap and heap[0][0] < now:
                forgotten, old = heapq.heappop(heap)
                del self._deadlines[old]
                self.forgotten_until = max(self.forgotten_until, forgotten)
            if deadline <= self.forgotten_until:
                return RequestRejected(
                    EXPIRED, "the request is older than requests this node already expired; sign a new one"
                )
            if key in self._deadlines:
                return RequestRejected(
                    REPLAYED, "this request was already received (same key and nonce); sign a new request"
                )
            if len(self._deadlines) >= self.capacity:
                wait = max(1, math.ceil(heap[0][0] - now))
                return RequestRejected(
                    BUSY,
                    f"the node is tracking {self.capacity} unexpired requests and cannot safely accept more; "
                    f"retry in {wait} s, or sign requests with a shorter lifetime",
                )
            self._deadlines[key] = deadline
            heapq.heappush(heap, (deadline, key))
            return None


class RequestVerifier:
    """Checks signed requests addressed to the node with key `node_key` (see the module docstring).

    Thread-safe, so verification can run in worker threads: libsodium releases the GIL while it checks a
    signature, and only the replay cache takes a lock.
    """

    def __init__(
        self,
        node_key: PublicKey,
        *,
        clock_skew: float = DEFAULT_CLOCK_SKEW,
        max_lifetime: float = DEFAULT_MAX_LIFETIME,
        replay_capacity: int = DEFAULT_REPLAY_CAPACITY,
    ) -> None:
        if not isinstance(node_key, PublicKey):
            raise TypeError(f"node_key must be a PublicKey, not {type(node_key).__name__}")
        self.node_key = node_key
        self.clock_skew = finite("clock_skew", clock_skew)
        self.max_lifetime = finite("max_lifetime", max_lifetime)
        if self.clock_skew < 0:
            raise ValueError(f"clock_skew must not be negative, got {clock_skew}")
        if self.max_lifetime <= 0:
            raise ValueError(f"max_lifetime must be positive, got {max_lifetime}")
        self.replays = ReplayCache(replay_capacity)

    def verify(self, raw: bytes, now: float, authorize: Authorize | None = None) -> VerifiedRequest:
        """Check `raw` (a frame's bin) at node time `now`; RequestRejected with the first failing check."""
        now = finite("now", now)
        try:
            caller, fields = unseal(raw, CONTEXT, _ENVELOPE_FIELDS, "request", "node manager request",
                                    limits=REQUEST_LIMITS)
        except EnvelopeRejected as exc:
            raise RequestRejected(exc.code, exc.message) from None
        fields = _check_envelope(fields)
        timestamp, expires = fields["ts"], fields["exp"]
        if fields["dest"] != self.node_key.raw:
            raise RequestRejected(
                WRONG_DESTINATION,
                f"the request is addressed to node {_fingerprint(fields['dest'])}, but this is node "
                f"{self.node_key.fingerprint()}; ask this node for its key (a public call) and sign again",
            )
        if now > expires + self.clock_skew:
            raise RequestRejected(
                EXPIRED,
                f"the request expired {now - expires:.1f} s ago by this node's clock (allowed skew "
                f"{self.clock_skew:g} s); check your clock and sign a new request",
            )
        if timestamp > now + self.clock_skew:
            raise RequestRejected(
                NOT_YET_VALID,
                f"the request is dated {timestamp - now:.1f} s in this node's future (allowed skew "
                f"{self.clock_skew:g} s); check your clock",
            )
        if expires - timestamp > self.max_lifetime:
            raise RequestRejected(
                TOO_LONG_LIFETIME,
                f"the request is valid for {expires - timestamp:g} s; this node accepts at most "
                f"{self.max_lifetime:g} s; sign with a shorter lifetime",
            )
        signer = PublicKey(caller)
        if authorize is None or authorize(signer, fields["call"], fields["args"]):
            refusal = self.replays.admit(caller + fields["nonce"], expires + self.clock_skew, now)
            if refusal is not None:
                raise refusal
        return VerifiedRequest(signer, fields["call"], fields["args"], fields["nonce"], timestamp, expires)


def claimed_signer(prefix: bytes) -> bytes | None:
    """The raw key a signed request's frame body claims to be signed by, from its first SIGNER_PREFIX bytes;
    None if the body does not start like a signed request. Nothing is verified: it only tells the node whose
    rights the frame would need, so that it can refuse a large frame from a key that has none."""
    header = _BIN_HEADERS.get(prefix[0]) if prefix else None
    return None if header is None else request_signer(prefix[header:])


def request_signer(request: bytes) -> bytes | None:
    """The raw key a signed request (decoded from its frame) claims to be signed by; None if it does not
    start like one. Nothing is verified."""
    start = SIGNATURE_SIZE
    if request[start:start + len(CONTEXT)] != CONTEXT:
        return None
    key = request[start + len(CONTEXT):start + len(CONTEXT) + PUBLIC_KEY_SIZE]
    return key if len(key) == PUBLIC_KEY_SIZE else None


def parse_public_request(message: object) -> PublicRequest:
    """The unsigned request map → PublicRequest; RequestRejected(malformed) naming what is wrong."""
    if not isinstance(message, dict) or set(message) != {"call", "args"}:
        raise RequestRejected(MALFORMED, "a public request is a map with exactly the keys 'call' and 'args'")
    try:
        _check_call(message["call"])
        _check_args(message["args"])
    except (TypeError, ValueError) as exc:
        raise RequestRejected(MALFORMED, str(exc)) from None
    return PublicRequest(message["call"], message["args"])


def open_request(message: object, verifier: RequestVerifier, now: float, authorize: Authorize | None = None
                 ) -> VerifiedRequest | PublicRequest:
    """One decoded frame → a checked request: a bin is signed (verified), a map is public (parsed)."""
    if isinstance(message, bytes):
        return verifier.verify(message, now, authorize)
    return parse_public_request(message)


def _check_envelope(fields: dict[str, Any]) -> dict[str, Any]:
    try:
        _check_call(fields["call"])
        _check_args(fields["args"])
        fields["ts"] = finite("ts", fields["ts"])
        fields["exp"] = finite("exp", fields["exp"])
    except (TypeError, ValueError) as exc:
        raise RequestRejected(MALFORMED, str(exc)) from None
    if not isinstance(fields["dest"], bytes) or len(fields["dest"]) != PUBLIC_KEY_SIZE:
        raise RequestRejected(MALFORMED, f"'dest' must be a {PUBLIC_KEY_SIZE}-byte public key")
    if not isinstance(fields["nonce"], bytes) or len(fields["nonce"]) != NONCE_SIZE:
        raise RequestRejected(MALFORMED, f"'nonce' must be {NONCE_SIZE} bytes")
    if fields["exp"] < fields["ts"]:
        raise RequestRejected(MALFORMED, "the request expires before it was made ('exp' < 'ts')")
    return fields


# --- responses --------------------------------------------------------------------------------------------


def ok(result: Any = None) -> dict[str, Any]:
    return {"status": SUCCESS, "code": OK_CODE, "message": "", "result": result}


def error(code: str, message: str) -> dict[str, Any]:
    """A failure: `code` for programs (stable, lower_snake_case), `message` for the person reading it."""
    return {"status": ERROR, "code": _check_code(code), "message": _check_message(message), "result": None}


def warning(code: str, message: str, result: Any = None) -> dict[str, Any]:
    """Done, but with something the caller should know (e.g. a vessel that did not stop in time)."""
    code, message = _check_code(code), _check_message(message)
    return {"status": WARNING, "code": code, "message": message, "result": result}


def parse_response(message: object) -> Response:
    """A decoded reply frame → Response; MalformedResponse naming the field that is wrong."""
    if not isinstance(message, dict) or set(message) != _RESPONSE_FIELDS:
        raise MalformedResponse(f"a response is a map with exactly the keys {sorted(_RESPONSE_FIELDS)}")
    if message["status"] not in _STATUSES:
        raise MalformedResponse(f"response status {message['status']!r} is not one of {', '.join(_STATUSES)}")
    if not isinstance(message["code"], str) or not _CODE_PATTERN.fullmatch(message["code"]):
        raise MalformedResponse(f"response code {message['code']!r} is not a lower_snake_case word")
    if not isinstance(message["message"], str):
        raise MalformedResponse("response message is not a string")
    return Response(message["status"], message["code"], message["message"], message["result"])


# --- small checks -----------------------------------------------------------------------------------------


def _check_call(call: object) -> str:
    if not isinstance(call, str) or not _CALL_PATTERN.fullmatch(call):
        raise ValueError(f"call must be a name of letters, digits and '_' (at most 64), got {call!r:.80}")
    return call


def _check_args(args: object) -> None:
    if not isinstance(args, list | dict):
        raise TypeError(f"args must be a list or a map, not {type(args).__name__}")


def _check_code(code: str) -> str:
    if not isinstance(code, str) or not _CODE_PATTERN.fullmatch(code):
        raise ValueError(f"a response code must be lower_snake_case, got {code!r}")
    return code


def _check_message(message: str) -> str:
    if not isinstance(message, str) or not message:
        raise ValueError("an error or warning needs a non-empty message a person can act on")
    return message


def _fingerprint(raw: bytes) -> str:
    return PublicKey(raw).fingerprint()
