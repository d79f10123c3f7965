"""Signed requests: every rejection, the order of the checks, replay protection, concurrency, responses."""

from __future__ import annotations

import itertools
import math
import os
import re
import socket
import threading
from collections import Counter
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seattle.keys import generate_identity
from seattle.nodemgr import signing
from seattle.nodemgr.frames import FrameDecoder, encode_frame
from seattle.nodemgr.signing import (
    BAD_SIGNATURE,
    BUSY,
    CHECK_ORDER,
    CONTEXT,
    EXPIRED,
    MALFORMED,
    NONCE_SIZE,
    NOT_YET_VALID,
    REPLAYED,
    TOO_LONG_LIFETIME,
    WRONG_DESTINATION,
    MalformedResponse,
    PublicRequest,
    RequestRejected,
    RequestVerifier,
    VerifiedRequest,
    error,
    ok,
    open_request,
    parse_public_request,
    parse_response,
    public_request,
    sign_request,
    warning,
)

ALICE = generate_identity("alice")
MALLORY = generate_identity("mallory")
NODE = generate_identity("node")
OTHER_NODE = generate_identity("other")
NOW = 1_700_000_000.0
SKEW = 30.0
MAX_LIFETIME = 600.0
LIFETIME = 60.0


def verifier(capacity: int = 1000) -> RequestVerifier:
    return RequestVerifier(
        NODE.public_key, clock_skew=SKEW, max_lifetime=MAX_LIFETIME, replay_capacity=capacity
    )


def request(
    now: float = NOW, lifetime: float = LIFETIME, nonce: bytes | None = None, **changes: Any
) -> bytes:
    identity = changes.pop("identity", ALICE)
    destination = changes.pop("destination", NODE.public_key)
    call = changes.pop("call", "StartVessel")
    args = changes.pop("args", ["v1", "repyV2", "program.r2py"])
    return sign_request(
        identity, destination, call, args, now=now, lifetime=lifetime, nonce=nonce or os.urandom(NONCE_SIZE)
    )


def forge(envelope: object, *, context: bytes = CONTEXT, identity: Any = ALICE) -> bytes:
    """A correctly signed request around any envelope, to reach the checks behind the signature."""
    body = envelope if isinstance(envelope, bytes) else msgpack.packb(envelope, use_bin_type=True)
    return bytes(identity.signing_key.sign(context + identity.public_key.raw + body))


DROP = object()  # an envelope() argument meaning "leave this field out"


def envelope(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "call": "StartVessel",
        "args": [],
        "dest": NODE.public_key.raw,
        "ts": NOW,
        "exp": NOW + LIFETIME,
        "nonce": os.urandom(NONCE_SIZE),
    }
    fields.update(changes)
    return {key: value for key, value in fields.items() if value is not DROP}


def rejection(raw: object, now: float = NOW, checker: RequestVerifier | None = None) -> RequestRejected:
    with pytest.raises(RequestRejected) as caught:
        (checker or verifier()).verify(raw, now)  # type: ignore[arg-type]
    return caught.value


def tamper(raw: bytes, index: int) -> bytes:
    return raw[:index] + bytes([raw[index] ^ 0x01]) + raw[index + 1 :]


# --- the accepted case ------------------------------------------------------------------------------------


def test_a_good_request_is_accepted_with_its_fields() -> None:
    nonce = os.urandom(NONCE_SIZE)
    raw = request(args={"vessel": "v1", "data": b"\x00\xff"}, call="AddFileToVessel", nonce=nonce)
    verified = verifier().verify(raw, NOW + 1)
    assert verified == VerifiedRequest(
        ALICE.public_key,
        "AddFileToVessel",
        {"vessel": "v1", "data": b"\x00\xff"},
        nonce,
        NOW,
        NOW + LIFETIME,
    )


def test_the_sent_bytes_are_what_the_signature_covers() -> None:
    raw = request()
    assert raw[64 : 64 + len(CONTEXT)] == CONTEXT
    assert raw[64 + len(CONTEXT) : 96 + len(CONTEXT)] == ALICE.public_key.raw
    ALICE.verify_key.verify(raw)  # combined mode: signature ‖ exactly the rest of the bytes


# --- each rejection alone ---------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["signature", "context", "caller key", "envelope start", "last byte"])
def test_any_tampered_byte_is_a_bad_signature(where: str) -> None:
    raw = request()
    index = {
        "signature": 10,
        "context": 70,
        "caller key": 64 + len(CONTEXT) + 5,
        "envelope start": 96 + len(CONTEXT),
        "last byte": len(raw) - 1,
    }[where]
    refused = rejection(tamper(raw, index))
    assert refused.code == BAD_SIGNATURE and "does not match" in refused.message


def test_signed_by_another_key_than_it_names_is_a_bad_signature() -> None:
    """Mallory signs a request and puts Alice's key in it: the signature cannot verify with Alice's key."""
    raw = request(identity=MALLORY)
    start = 64 + len(CONTEXT)
    impostor = raw[:start] + ALICE.public_key.raw + raw[start + 32 :]
    refused = rejection(impostor)
    assert refused.code == BAD_SIGNATURE and ALICE.public_key.to_text() in refused.message


def test_a_request_for_another_node_is_refused() -> None:
    refused = rejection(request(destination=OTHER_NODE.public_key))
    assert refused.code == WRONG_DESTINATION
    assert OTHER_NODE.public_key.fingerprint() in refused.message
    assert NODE.public_key.fingerprint() in refused.message


def test_expiry_allows_the_clock_skew_and_no_more() -> None:
    raw = request()
    deadline = NOW + LIFETIME + SKEW
    assert rejection(raw, deadline + 0.001).code == EXPIRED
    assert "check your clock" in rejection(raw, deadline + 5).message
    assert verifier().verify(raw, deadline).nonce


def test_a_request_from_the_future_allows_the_clock_skew_and_no_more() -> None:
    assert verifier().verify(request(now=NOW + SKEW), NOW).timestamp == NOW + SKEW
    refused = rejection(request(now=NOW + SKEW + 0.5), NOW)
    assert refused.code == NOT_YET_VALID and "30.5 s in this node's future" in refused.message


def test_lifetime_longer_than_the_node_allows_is_refused() -> None:
    assert verifier().verify(request(lifetime=MAX_LIFETIME), NOW).expires == NOW + MAX_LIFETIME
    refused = rejection(request(lifetime=MAX_LIFETIME + 1))
    assert refused.code == TOO_LONG_LIFETIME and "at most 600 s" in refused.message


def test_a_replay_is_refused() -> None:
    checker = verifier()
    raw = request()
    checker.verify(raw, NOW)
    refused = rejection(raw, NOW + 1, checker)
    assert refused.code == REPLAYED and "already received" in refused.message


def test_the_same_nonce_from_another_key_is_not_a_replay() -> None:
    """Nonces are per caller, so nobody can block Alice's request by racing her nonce in first."""
    checker = verifier()
    nonce = os.urandom(NONCE_SIZE)
    checker.verify(request(identity=MALLORY, nonce=nonce), NOW)
    assert checker.verify(request(nonce=nonce), NOW).caller == ALICE.public_key


# --- the order of the checks ------------------------------------------------------------------------------

FAULTS = (BAD_SIGNATURE, WRONG_DESTINATION, EXPIRED, NOT_YET_VALID, TOO_LONG_LIFETIME, REPLAYED)
COMBINATIONS = [
    set(combination)
    for size in range(1, len(FAULTS) + 1)
    for combination in itertools.combinations(FAULTS, size)
    if not {EXPIRED, NOT_YET_VALID} <= set(combination)  # a request cannot be both (exp >= ts)
]


def with_faults(faults: set[str]) -> RequestRejected:
    """Build one request with all of `faults` and return the node's verdict on it."""
    checker = verifier()
    nonce = os.urandom(NONCE_SIZE)
    if REPLAYED in faults:  # a clean request with the same key and nonce was accepted before
        checker.verify(request(nonce=nonce, lifetime=MAX_LIFETIME), NOW)
    signed_at = NOW + SKEW + 5 if NOT_YET_VALID in faults else NOW
    lifetime = MAX_LIFETIME + 1 if TOO_LONG_LIFETIME in faults else LIFETIME
    destination = OTHER_NODE.public_key if WRONG_DESTINATION in faults else NODE.public_key
    raw = request(now=signed_at, lifetime=lifetime, nonce=nonce, destination=destination)
    if BAD_SIGNATURE in faults:
        raw = tamper(raw, 0)
    checked_at = signed_at + lifetime + SKEW + 1 if EXPIRED in faults else NOW
    return rejection(raw, checked_at, checker)


@pytest.mark.parametrize("faults", COMBINATIONS, ids=lambda faults: "+".join(sorted(faults)))
def test_the_first_failing_check_in_order_is_reported(faults: set[str]) -> None:
    expected = min(faults, key=CHECK_ORDER.index)
    assert with_faults(faults).code == expected


def test_bad_signature_comes_before_a_malformed_envelope() -> None:
    garbage = forge(b"\xc1 not msgpack")
    assert rejection(garbage).code == MALFORMED
    assert rejection(tamper(garbage, 3)).code == BAD_SIGNATURE


def test_check_order_is_the_documented_one() -> None:
    assert CHECK_ORDER == (
        MALFORMED,
        BAD_SIGNATURE,
        WRONG_DESTINATION,
        EXPIRED,
        NOT_YET_VALID,
        TOO_LONG_LIFETIME,
        REPLAYED,
        BUSY,
    )
    documented = re.findall(r"^ {4}([a-z_]+) {2,}", signing.__doc__ or "", re.MULTILINE)
    assert tuple(dict.fromkeys(documented)) == CHECK_ORDER


# --- malformed requests -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        ("a string", "signed request is bytes"),
        (b"\x00" * 100, "signed request is bytes"),
        (
            forge(envelope(), context=b"some/other/protocol/v1\x00\x00\x00\x00\x00"),
            "not a node manager request",
        ),
        (forge(b"\xc1"), "not valid msgpack"),
        (forge(envelope() | {"x": 1}), "must be a map of"),
        (forge(envelope(nonce=DROP)), "must be a map of"),
        (forge(["not", "a", "map"]), "must be a map of"),
        (forge(envelope(call="rm -rf")), "call must be a name"),
        (forge(envelope(call=7)), "call must be a name"),
        (forge(envelope(args="v1")), "args must be a list or a map"),
        (forge(envelope(ts="yesterday")), "ts must be a finite number"),
        (forge(envelope(ts=True)), "ts must be a finite number"),
        (forge(envelope(exp=math.nan)), "exp must be a finite number"),
        (forge(envelope(exp=math.inf)), "exp must be a finite number"),
        (forge(envelope(dest=b"short")), "'dest' must be a 32-byte public key"),
        (forge(envelope(nonce=b"n" * 8)), "'nonce' must be 16 bytes"),
        (forge(envelope(nonce="n" * 16)), "'nonce' must be 16 bytes"),
        (forge(envelope(exp=NOW - 1)), "expires before it was made"),
    ],
)
def test_malformed_requests_say_what_is_wrong(raw: object, complaint: str) -> None:
    refused = rejection(raw)
    assert refused.code == MALFORMED and complaint in refused.message


def test_integer_timestamps_are_accepted() -> None:
    verified = verifier().verify(forge(envelope(ts=int(NOW), exp=int(NOW) + 10)), NOW)
    assert verified.timestamp == NOW and isinstance(verified.expires, float)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=400))
def test_arbitrary_bytes_are_only_ever_rejected(raw: bytes) -> None:
    with pytest.raises(RequestRejected) as caught:
        verifier().verify(raw, NOW)
    assert caught.value.code in (MALFORMED, BAD_SIGNATURE)


GOOD = request()


@settings(max_examples=200, deadline=None)
@given(index=st.integers(0, len(GOOD) - 1), flip=st.integers(1, 255))
def test_every_single_byte_change_is_a_bad_signature(index: int, flip: int) -> None:
    changed = GOOD[:index] + bytes([GOOD[index] ^ flip]) + GOOD[index + 1 :]
    assert rejection(changed).code == BAD_SIGNATURE


# --- replay cache -----------------------------------------------------------------------------------------


def test_replay_across_the_window_edge() -> None:
    """Replayed while it could still pass the expiry check → replayed; after → expired, and forgotten."""
    checker = verifier()
    raw = request()
    checker.verify(raw, NOW)
    deadline = NOW + LIFETIME + SKEW
    assert rejection(raw, deadline - 0.001, checker).code == REPLAYED
    assert rejection(raw, deadline, checker).code == REPLAYED
    assert rejection(raw, deadline + 0.001, checker).code == EXPIRED
    assert len(checker.replays) == 1
    checker.verify(request(now=deadline + 1), deadline + 1)  # admitting anything evicts what has expired
    assert len(checker.replays) == 1 and checker.replays.forgotten_until == deadline


def test_setting_the_clock_back_does_not_reopen_a_replay_window() -> None:
    checker = verifier()
    first = request(lifetime=10)
    checker.verify(first, NOW)
    later = NOW + 10 + SKEW + 1
    checker.verify(request(now=later), later)  # the first nonce is forgotten now
    refused = rejection(first, NOW + 1, checker)  # the node's clock was stepped back
    assert refused.code == EXPIRED and "already expired" in refused.message


def test_a_full_cache_refuses_new_requests_but_forgets_nothing_valid() -> None:
    checker = verifier(capacity=2)
    first, second = request(lifetime=10), request(lifetime=50)
    checker.verify(first, NOW)
    checker.verify(second, NOW)
    refused = rejection(request(), NOW + 1, checker)
    assert refused.code == BUSY and "retry in 39 s" in refused.message
    assert rejection(first, NOW + 2, checker).code == REPLAYED  # a replay is still recognised when full
    after_first = NOW + 10 + SKEW + 0.5
    assert checker.verify(request(now=after_first), after_first).caller == ALICE.public_key
    assert rejection(second, after_first, checker).code == REPLAYED


def test_a_rejected_request_does_not_use_up_its_nonce() -> None:
    checker = verifier()
    nonce = os.urandom(NONCE_SIZE)
    rejection(request(nonce=nonce, destination=OTHER_NODE.public_key), NOW, checker)
    assert checker.verify(request(nonce=nonce), NOW).nonce == nonce


# --- concurrency ------------------------------------------------------------------------------------------


def test_two_clients_with_one_key_at_the_same_instant_both_work() -> None:
    """The original refused equal or older timestamps per key; with random nonces both clients succeed."""
    checker = verifier(capacity=10_000)
    per_client = 300
    batches = [[request(now=NOW) for _ in range(per_client)] for _client in range(2)]
    results: list[list[str]] = [[], []]

    def client(index: int) -> None:
        for raw in batches[index]:
            try:
                results[index].append(checker.verify(raw, NOW).call)
            except RequestRejected as exc:
                results[index].append(exc.code)

    threads = [threading.Thread(target=client, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [["StartVessel"] * per_client] * 2
    assert len(checker.replays) == 2 * per_client


def test_a_request_replayed_from_many_threads_is_accepted_exactly_once() -> None:
    checker = verifier(capacity=10_000)
    for _round in range(20):
        raw = request()
        barrier = threading.Barrier(8)
        outcomes: list[str] = []

        def submit(
            raw: bytes = raw, barrier: threading.Barrier = barrier, outcomes: list[str] = outcomes
        ) -> None:
            barrier.wait()
            try:
                checker.verify(raw, NOW)
                outcomes.append("accepted")
            except RequestRejected as exc:
                outcomes.append(exc.code)

        threads = [threading.Thread(target=submit) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert Counter(outcomes) == {"accepted": 1, REPLAYED: 7}


# --- bad arguments ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"call": "Start Vessel"}, "call must be a name"),
        ({"args": "v1"}, "args must be a list or a map"),
        ({"nonce": b"short"}, "nonce must be 16 random bytes"),
        ({"lifetime": 0}, "lifetime must be positive"),
        ({"lifetime": -5}, "lifetime must be positive"),
        ({"now": math.nan}, "now must be a finite number"),
        ({"now": 10**400}, "now must be a finite number"),
    ],
)
def test_sign_request_rejects_bad_arguments(changes: dict[str, Any], complaint: str) -> None:
    with pytest.raises((ValueError, TypeError), match=complaint):
        request(**changes)


def test_sign_request_rejects_wrong_types_for_keys() -> None:
    with pytest.raises(TypeError, match="destination must be a PublicKey"):
        sign_request(ALICE, NODE.public_key.raw, "X", [], now=NOW, nonce=b"n" * 16)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="identity must be an Identity"):
        sign_request(ALICE.signing_key, NODE.public_key, "X", [], now=NOW, nonce=b"n" * 16)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"clock_skew": -1.0}, "clock_skew must not be negative"),
        ({"clock_skew": math.inf}, "clock_skew must be a finite number"),
        ({"max_lifetime": 0.0}, "max_lifetime must be positive"),
        ({"replay_capacity": 0}, "replay_capacity must be a positive integer"),
        ({"replay_capacity": 2.5}, "replay_capacity must be a positive integer"),
    ],
)
def test_verifier_rejects_bad_settings(options: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        RequestVerifier(NODE.public_key, **options)


def test_verifier_rejects_a_bad_clock_reading() -> None:
    with pytest.raises(ValueError, match="now must be a finite number"):
        verifier().verify(request(), math.nan)


# --- public requests and responses ------------------------------------------------------------------------


def test_public_requests_are_parsed_and_open_request_dispatches_on_the_type() -> None:
    message = public_request("GetVessels", [])
    assert message == {"call": "GetVessels", "args": []}
    checker = verifier()
    assert open_request(message, checker, NOW) == PublicRequest("GetVessels", [])
    assert isinstance(open_request(request(), checker, NOW), VerifiedRequest)


@pytest.mark.parametrize(
    ("message", "complaint"),
    [
        (["GetVessels"], "exactly the keys 'call' and 'args'"),
        ({"call": "GetVessels"}, "exactly the keys 'call' and 'args'"),
        ({"call": "GetVessels", "args": [], "sig": b""}, "exactly the keys 'call' and 'args'"),
        ({"call": "", "args": []}, "call must be a name"),
        ({"call": "GetVessels", "args": 3}, "args must be a list or a map"),
    ],
)
def test_malformed_public_requests_say_what_is_wrong(message: object, complaint: str) -> None:
    with pytest.raises(RequestRejected, match=complaint) as caught:
        parse_public_request(message)
    assert caught.value.code == MALFORMED


def test_response_forms() -> None:
    assert ok({"v1": "Fresh"}) == {
        "status": "success",
        "code": "ok",
        "message": "",
        "result": {"v1": "Fresh"},
    }
    assert error("no_such_vessel", "there is no vessel 'v9'; GetVessels lists them") == {
        "status": "error",
        "code": "no_such_vessel",
        "message": "there is no vessel 'v9'; GetVessels lists them",
        "result": None,
    }
    assert (
        warning("not_stopped_in_time", "the vessel may still be running", "Started")["status"] == "warning"
    )
    assert RequestRejected(EXPIRED, "sign again").response() == error(EXPIRED, "sign again")


@pytest.mark.parametrize(
    ("make", "complaint"),
    [
        (lambda: error("Not-A-Code", "text"), "lower_snake_case"),
        (lambda: error("", "text"), "lower_snake_case"),
        (lambda: error("code", ""), "non-empty message"),
        (lambda: warning("code", "", None), "non-empty message"),
    ],
)
def test_response_helpers_reject_bad_codes_and_empty_messages(make: Any, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        make()


def test_parse_response_accepts_each_form() -> None:
    for message in (ok(3), error("busy", "retry"), warning("late", "slow", [1])):
        parsed = parse_response(message)
        assert (parsed.status, parsed.code, parsed.message, parsed.result) == tuple(message.values())


@pytest.mark.parametrize(
    ("message", "complaint"),
    [
        ("Success", "a response is a map"),
        ({"status": "success", "code": "ok", "message": ""}, "a response is a map"),
        (
            {"status": "Success", "code": "ok", "message": "", "result": None},
            "status 'Success' is not one of",
        ),
        ({"status": "error", "code": "Bad Code", "message": "", "result": None}, "code 'Bad Code'"),
        ({"status": "error", "code": "x", "message": b"bytes", "result": None}, "message is not a string"),
    ],
)
def test_parse_response_names_the_bad_field(message: object, complaint: str) -> None:
    with pytest.raises(MalformedResponse, match=complaint):
        parse_response(message)


# --- over a real connection -------------------------------------------------------------------------------


@pytest.mark.slow
def test_pipelined_requests_over_loopback_then_one_shot_close() -> None:
    """A client writes three requests back to back and half-closes; the node answers each, in order."""
    checker = verifier()
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def serve() -> None:
            connection, _ = server.accept()
            with connection:
                decoder = FrameDecoder()
                while data := connection.recv(65536):
                    for message in decoder.feed(data):
                        try:
                            checked = open_request(message, checker, NOW)
                            reply = ok(checked.call)
                        except RequestRejected as exc:
                            reply = exc.response()
                        connection.sendall(encode_frame(reply))
                decoder.end_of_stream()

        node = threading.Thread(target=serve)
        node.start()
        first = request(call="ListFilesInVessel")
        stream = encode_frame(first) + encode_frame(public_request("GetVessels", [])) + encode_frame(first)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(stream)
            client.shutdown(socket.SHUT_WR)
            decoder = FrameDecoder()
            replies: list[object] = []
            while data := client.recv(65536):
                replies.extend(decoder.feed(data))
        node.join(timeout=10)
    parsed = [parse_response(reply) for reply in replies]
    assert [(reply.status, reply.code, reply.result) for reply in parsed] == [
        ("success", "ok", "ListFilesInVessel"),
        ("success", "ok", "GetVessels"),
        ("error", REPLAYED, None),
    ]
