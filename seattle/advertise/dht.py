"""Storing vessel records in the overlay and reading them back, over any transport that can look up and ask.

    stored = await publish(overlay, raw_record, timeout=5.0)         # the node manager's advertiser
    records = await find_records(overlay, researcher_key, timeout=5.0)  # browse

Both start with a Kademlia lookup of the record's DHT key (`records.dht_key(subject)`), which returns the k
live nodes closest to it, and then talk to all of them at once:

* `publish` asks each for a write token (a `get_records` answer carries one, bound to our IP) and sends
  `add_record` with it. Every one of the k closest holds a copy, so records survive holders leaving.
* `find_records` pages through `get_records` on every one of the k closest and merges what they return.
  It never stops at the first holder that answers: a holder can be stale (it missed the newer record or the
  tombstone) or lying (it can drop records but not forge them), and only the union, merged by sequence,
  gives the newest state. Every record is verified here again: a holder is just another peer.

Each request has its own timeout, so a dead or slow holder costs at most that long and never stalls the rest.
Both run over any `seattle.overlay.transport.OverlayTransport` (UDP or simulated) and read the time from it
(`transport.now()`), so records are checked against the same clock the engine uses.
"""

from __future__ import annotations

import trio

from seattle.keys import PublicKey
from seattle.overlay.messages import Kind
from seattle.overlay.nodeid import Contact, NodeId
from seattle.overlay.records import RecordRejected, VesselRecord, dht_key, merge, verify
from seattle.overlay.transport import OverlayTransport

#: A holder caps records per key at 64 by default; more pages than this from one holder is a holder lying.
MAX_PAGES = 32


async def publish(transport: OverlayTransport, raw_record: bytes, *, timeout: float) -> int:
    """Store `raw_record` (signed bytes, e.g. from `records.sign`) on the k nodes closest to its DHT key.

    Returns how many of them stored it. A holder that refuses (stale sequence, full, rate limited) or does not
    answer within `timeout` simply does not count; RecordRejected if the record itself is not valid now.
    """
    record = verify(raw_record, transport.now())
    contacts = await _lookup(transport, dht_key(record.subject), timeout)
    stored = 0

    async def store_on(contact: Contact) -> None:
        nonlocal stored
        with trio.move_on_after(timeout):
            try:
                answer = await transport.request(
                    contact, Kind.GET_RECORDS, {"key": dht_key(record.subject), "skip": 0}, timeout
                )
                if answer.kind is not Kind.RECORDS:
                    return
                added = await transport.request(
                    contact, Kind.ADD_RECORD, {"record": raw_record, "token": answer.body["token"]}, timeout
                )
            except TimeoutError:
                return
            if added.kind is Kind.ADDED:
                stored += 1

    async with trio.open_nursery() as nursery:
        for contact in contacts:
            nursery.start_soon(store_on, contact)
    return stored


async def find_records(transport: OverlayTransport, subject: PublicKey, *, timeout: float) -> list[VesselRecord]:
    """The current advertisements for `subject`: verified, merged across all k closest holders
    (per node the highest sequence wins; tombstones remove), in a stable order."""
    if not isinstance(subject, PublicKey):
        raise TypeError(f"subject must be a PublicKey, not {type(subject).__name__}")
    key = dht_key(subject)
    contacts = await _lookup(transport, key, timeout)
    found: list[VesselRecord] = []

    async def read_from(contact: Contact) -> None:
        skip = 0
        with trio.move_on_after(timeout):
            for _ in range(MAX_PAGES):
                try:
                    answer = await transport.request(contact, Kind.GET_RECORDS, {"key": key, "skip": skip}, timeout)
                except TimeoutError:
                    return
                if answer.kind is not Kind.RECORDS:
                    return
                raws: list[bytes] = answer.body["records"]
                found.extend(_valid(raws, subject, transport.now()))
                skip += len(raws)
                if not answer.body["more"] or not raws:
                    return

    async with trio.open_nursery() as nursery:
        for contact in contacts:
            nursery.start_soon(read_from, contact)
    return merge(found)


def _valid(raws: list[bytes], subject: PublicKey, now: float) -> list[VesselRecord]:
    """The records that verify at `now` and are about `subject` (a holder may return anything under the key)."""
    valid = []
    for raw in raws:
        try:
            record = verify(raw, now)
        except RecordRejected:
            continue
        if record.subject == subject:
            valid.append(record)
    return valid


async def _lookup(transport: OverlayTransport, key: NodeId, timeout: float) -> list[Contact]:
    try:
        return await transport.lookup(key, timeout)
    except TimeoutError:
        return []
