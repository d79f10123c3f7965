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

What a reader takes from holders is bounded before it is merged: at most MAX_PAGES answers and
MAX_RECORDS_PER_HOLDER distinct records from one holder (twice what an honest holder keeps under a key), and
at most MAX_FOUND advertisements in all. Records that do not verify, or are about another subject, are
dropped and counted (`dropped`, by refusal code). When more than MAX_FOUND advertisements verify (a flood),
those returned by the most holders are kept: a donor's record is stored on every honest holder (their stores
share room fairly between sources, `seattle.overlay.store`), while a flood must reach all of them to rank
as high; every record kept is still a valid signature, and browse asks each node for itself.

Each request has its own timeout, so a dead or slow holder costs at most that long and never stalls the rest.
Both run over any `seattle.overlay.transport.OverlayTransport` (UDP or simulated) and read the time from it
(`transport.now()`), so records are checked against the same clock the engine uses.
"""

from __future__ import annotations

from collections import Counter

import trio

from seattle.keys import PublicKey
from seattle.overlay.messages import Kind
from seattle.overlay.nodeid import Contact, NodeId
from seattle.overlay.records import RecordRejected, VesselRecord, dht_key, merge, verify
from seattle.overlay.transport import OverlayTransport

#: A holder caps records per key at 64 by default; more pages than this from one holder is a holder lying.
MAX_PAGES = 32
#: Distinct records read from one holder at most: twice the 64 an honest holder keeps under one key.
MAX_RECORDS_PER_HOLDER = 128
#: Advertisements `find_records` returns at most (browse asks every one of them).
MAX_FOUND = 256


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


async def find_records(transport: OverlayTransport, subject: PublicKey, *, timeout: float,
                       dropped: Counter[str] | None = None) -> list[VesselRecord]:
    """The current advertisements for `subject`: verified, merged across all k closest holders
    (per node the highest sequence wins; tombstones remove), in a stable order (by node key).

    Bounded as the module docstring says; what was refused is counted into `dropped` when given.
    """
    if not isinstance(subject, PublicKey):
        raise TypeError(f"subject must be a PublicKey, not {type(subject).__name__}")
    dropped = dropped if dropped is not None else Counter()
    key = dht_key(subject)
    contacts = await _lookup(transport, key, timeout)
    found: list[VesselRecord] = []
    holders: Counter[tuple[bytes, bytes]] = Counter()  # per slot, how many holders returned it

    async def read_from(contact: Contact) -> None:
        skip = 0
        seen: set[bytes] = set()
        mine: list[VesselRecord] = []
        with trio.move_on_after(timeout):
            for _ in range(MAX_PAGES):
                try:
                    answer = await transport.request(contact, Kind.GET_RECORDS, {"key": key, "skip": skip}, timeout)
                except TimeoutError:
                    break
                if answer.kind is not Kind.RECORDS:
                    break
                raws: list[bytes] = answer.body["records"]
                skip += len(raws)
                fresh = [raw for raw in raws if raw not in seen]
                room = MAX_RECORDS_PER_HOLDER - len(seen)
                if len(fresh) > room:
                    dropped["over_holder_limit"] += len(fresh) - room
                    fresh = fresh[:room]
                seen.update(fresh)
                mine.extend(_valid(fresh, subject, transport.now(), dropped))
                if not answer.body["more"] or not raws or len(seen) >= MAX_RECORDS_PER_HOLDER:
                    break
        found.extend(mine)
        holders.update({record.slot for record in mine})

    async with trio.open_nursery() as nursery:
        for contact in contacts:
            nursery.start_soon(read_from, contact)
    merged = merge(found)
    if len(merged) > MAX_FOUND:
        dropped["over_found_limit"] += len(merged) - MAX_FOUND
        ranked = sorted(merged, key=lambda record: (-holders[record.slot], record.node.raw))
        merged = merge(ranked[:MAX_FOUND])
    return merged


def _valid(raws: list[bytes], subject: PublicKey, now: float, dropped: Counter[str]) -> list[VesselRecord]:
    """The records that verify at `now` and are about `subject` (a holder may return anything under the key)."""
    valid = []
    for raw in raws:
        try:
            record = verify(raw, now)
        except RecordRejected as rejected:
            dropped[rejected.code] += 1
            continue
        if record.subject == subject:
            valid.append(record)
        else:
            dropped["wrong_subject"] += 1
    return valid


async def _lookup(transport: OverlayTransport, key: NodeId, timeout: float) -> list[Contact]:
    try:
        return await transport.lookup(key, timeout)
    except TimeoutError:
        return []
