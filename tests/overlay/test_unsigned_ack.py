"""Acks are unsigned (the overlay's join speed, after issue 13): the cookie alone proves the address.

These pin the admission rules that made dropping the ack's signature safe: a wrong cookie, a cookie replayed
from another address or for another id, and a forged source admit nobody; an ack never moves or refreshes a
contact the table holds at another address; and the one case the signature used to cover (a fresh request
replayed by someone on its path, from an address of its own) plants at most a contact that cannot answer and
is dropped after `max_failures` missed requests.
"""

from __future__ import annotations

import secrets

from seattle.overlay import messages
from seattle.overlay.messages import Ack, Kind, Message
from seattle.overlay.nodeid import Contact
from seattle.overlay.protocol import OverlayNode
from seattle.testing.overlay import seeded_identity, seeded_node

EPOCH = 1_700_000_000.0
Address = tuple[str, int]
AT_HONEST: Address = ("10.0.1.1", 7000)
AT_TARGET: Address = ("10.0.2.1", 7000)
AT_MALLORY: Address = ("10.0.66.1", 7000)


def _request(honest: OverlayNode, target: OverlayNode) -> bytes:
    """A fresh ping from honest, bound to target: what an observer on their path can capture."""
    honest.ping(Contact(target.node_id, *AT_TARGET), EPOCH)
    [(request, to)] = honest.poll(EPOCH)
    assert to == AT_TARGET
    return request


def _cookie_for(target: OverlayNode, request: bytes, source: Address) -> bytes | None:
    """The cookie target's answer to `request` from `source` carries (None if it carries none)."""
    [(answer, to)] = target.datagram_received(request, source, EPOCH)
    decoded = messages.decode(answer)
    assert to == source and isinstance(decoded, Message)
    return decoded.cookie


def _holds(node: OverlayNode, other: OverlayNode) -> Address | None:
    entry = node.table.bucket_for(other.node_id).entries.get(other.node_id.value)
    return None if entry is None else (entry.contact.host, entry.contact.port)


def test_an_ack_is_small_unsigned_and_admits_only_with_the_cookie_for_that_id_and_address() -> None:
    honest, target = seeded_node("honest"), seeded_node("target")
    cookie = _cookie_for(target, _request(honest, target), AT_HONEST)
    assert cookie is not None
    ack = messages.encode_ack(honest.node_id, cookie)
    assert len(ack) == messages.ACK_SIZE < messages.SIGNATURE_SIZE + 32  # smaller than any signed datagram
    other = seeded_node("other")
    wrong = [
        (messages.encode_ack(honest.node_id, secrets.token_bytes(8)), AT_HONEST),  # a guessed cookie
        (messages.encode_ack(other.node_id, cookie), AT_HONEST),  # honest's cookie, another id
        (ack, AT_MALLORY),  # honest's ack, replayed from another address
    ]
    for data, source in wrong:
        assert target.datagram_received(data, source, EPOCH) == []
    assert target.dropped == {"bad_cookie": 3} and len(target.table) == 0
    assert target.datagram_received(ack, AT_HONEST, EPOCH) == []  # answered by nothing
    assert _holds(target, honest) == AT_HONEST


def test_a_forged_source_request_is_never_admitted_even_by_a_flood_of_guessed_acks() -> None:
    """Mallory signs with her own key and forges the victim's source: the cookie goes to the victim, so all
    she can send from the victim's address are guesses."""
    target, mallory = seeded_node("target"), seeded_identity("mallory")
    request = messages.encode(mallory, Kind.PING, secrets.token_bytes(8), {}, to=target.node_id, at=EPOCH)
    victim: Address = ("10.0.9.9", 53)
    assert _cookie_for(target, request, victim) is not None
    mallory_id = seeded_node("mallory").node_id
    for _ in range(200):
        target.datagram_received(messages.encode_ack(mallory_id, secrets.token_bytes(8)), victim, EPOCH)
    assert target.dropped["bad_cookie"] == 200 and len(target.table) == 0


def test_an_ack_never_moves_or_refreshes_a_contact_held_at_another_address() -> None:
    honest, target = seeded_node("honest"), seeded_node("target")
    # Mallory, on honest's path, captures a fresh request and keeps the cookie target sends her address.
    request = _request(honest, target)
    replayed_cookie = _cookie_for(target, request, AT_MALLORY)
    assert replayed_cookie is not None
    # Honest's own round trip comes first: target holds honest at honest's address.
    [(ack, _)] = honest.datagram_received(target.datagram_received(request, AT_HONEST, EPOCH)[0][0], AT_TARGET, EPOCH)
    target.datagram_received(ack, AT_HONEST, EPOCH)
    assert _holds(target, honest) == AT_HONEST
    # Her ack is valid for honest at her address, and moves nothing; a replay from her address draws no cookie.
    assert target.datagram_received(messages.encode_ack(honest.node_id, replayed_cookie), AT_MALLORY, EPOCH) == []
    assert target.dropped["known_elsewhere"] == 1 and _holds(target, honest) == AT_HONEST
    assert _cookie_for(target, request, AT_MALLORY) is None
    # Nor does an ack from honest's own address without honest's cookie refresh it (it could be forged there).
    entry = target.table.bucket_for(honest.node_id).entries[honest.node_id.value]
    entry.failures = 2
    target.datagram_received(messages.encode_ack(honest.node_id, replayed_cookie), AT_HONEST, EPOCH)
    assert target.dropped["bad_cookie"] == 1 and entry.failures == 2


def test_a_replayed_request_acked_from_its_own_address_plants_only_a_contact_that_is_soon_dropped() -> None:
    """The case the ack's signature covered: the planted contact cannot answer as honest (answers are signed
    and matched to the id asked), so target's requests to it fail and drop it; then honest gets in."""
    honest, target, mallory = seeded_node("honest"), seeded_node("target"), seeded_node("mallory")
    request = _request(honest, target)
    cookie = _cookie_for(target, request, AT_MALLORY)
    assert cookie is not None
    target.datagram_received(messages.encode_ack(honest.node_id, cookie), AT_MALLORY, EPOCH)
    assert _holds(target, honest) == AT_MALLORY
    now = EPOCH
    for _ in range(target.table.max_failures):
        target.ping(Contact(honest.node_id, *AT_MALLORY), now)
        for data, to in target.poll(now):
            assert to == AT_MALLORY
            for answer, _ in mallory.datagram_received(data, AT_TARGET, now):  # mallory answers as herself
                target.datagram_received(answer, AT_MALLORY, now)
        now += 60
        target.poll(now)
    assert target.dropped["wrong_sender"] == target.table.max_failures
    assert _holds(target, honest) is None
    # Honest's own request and ack now admit it at its real address.
    honest.ping(Contact(target.node_id, *AT_TARGET), now)
    [(fresh, _)] = honest.poll(now)
    [(answer, _)] = target.datagram_received(fresh, AT_HONEST, now)
    replies = honest.datagram_received(answer, AT_TARGET, now)
    assert [isinstance(messages.decode(data), Ack) for data, _ in replies] == [True]
    target.datagram_received(replies[0][0], AT_HONEST, now)
    assert _holds(target, honest) == AT_HONEST
