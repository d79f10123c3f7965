"""One overlay node's protocol engine, sans-IO: datagrams and the time go in, datagrams to send come out.

The same code runs under the trio UDP transport and the network simulator; neither the engine nor the parts
it drives (`RoutingTable`, `Lookup`, `RecordStore`) own a socket or a clock. A transport:

* hands every received datagram to `datagram_received(data, address, now)` and sends what it returns;
* calls `poll(now)` when `next_deadline()` passes (and after `ping`/`request`/`start_lookup`) and sends
  what it returns.

Who enters the routing table: a peer whose signed *reply* came from the address we sent the request to,
under the id we expected (a reply matches a random 8-byte transaction id, so it proves the sender holds the
key behind its id and receives at that address), or a peer whose signed request was *bound* to us: it names
our id and a send time within FRESH_REQUEST seconds of our clock, and its (sender, txid) was not seen before.
Such a request was made for us just now, so it is not a capture replayed from another exchange. A bound
request that fails those checks proves only the key (a captured request can be replayed from any address),
so its unknown sender is pinged back at its source address and enters the table when that pong arrives. An
unbound request (a bootstrap request, whose sender does not know our id yet, or any request of a light client)
admits nobody: a full node's requests that follow are bound, and a light client must stay out of tables. A
known contact sending from its known address is simply refreshed. Binding saves a joining node's neighbours a
ping-pong each: a join cost about 85 signed datagrams before, about 44 now (PyPI `kademlia`: about 45).

Write tokens (BitTorrent BEP 5): `get_records` answers carry HMAC-SHA256(secret, requester IP), and
`add_record` is accepted only with a token for the sender's IP under the current or the previous secret.
Secrets rotate every TOKEN_ROTATION seconds, so a token lives 5 to 10 minutes, and a spoofed-source writer,
who never sees the answers sent to the address it forges, cannot store anything.

Randomness (transaction ids, token secrets) comes from the `randomness` the driver passes in, as time does:
a real node passes a CSPRNG (`random.SystemRandom()`: txids and secrets must be unguessable), the simulator
a seeded `random.Random`, so a seeded simulation sends the same bytes every run.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import itertools
import math
import random
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from seattle.keys import Identity
from seattle.overlay import messages
from seattle.overlay.lookup import Lookup, RttEstimator
from seattle.overlay.messages import Kind, Message, MessageRejected
from seattle.overlay.nodeid import Contact, NodeId
from seattle.overlay.records import RecordRejected
from seattle.overlay.routing import RoutingTable
from seattle.overlay.store import RecordStore

Address = tuple[str, int]
Datagram = tuple[bytes, Address]

TOKEN_ROTATION = 300.0
BAD_TOKEN = "bad_token"
#: Bounds on per-peer state, so a flood of requests or requests-to-send cannot grow memory without limit.
MAX_PENDING = 4096
MAX_VERIFYING = 256
MAX_OUTCOMES = 4096
#: How far a bound request's send time may be from our clock (either way) to admit its sender without a ping.
FRESH_REQUEST = 30.0
#: Bound requests remembered against replay (for FRESH_REQUEST seconds); when full, new ones get a ping back.
MAX_SEEN_REQUESTS = 16384
#: A request outside lookups (get_records, add_record, ping) waits this many lookup timeouts. A lookup can
#: cut its wait short because a late answer still counts (`poll`); a direct request's late answer is lost, and
#: many sent at once (a `find_records` asks 20 holders) queue behind each other at a busy node.
DIRECT_TIMEOUT_FACTOR = 4
#: Room left in a `records` answer for everything but the records (header, token, msgpack framing).
_RECORDS_OVERHEAD = 200


class Status(Enum):
    WAITING = "waiting"
    ANSWERED = "answered"
    TIMED_OUT = "timed out"


# Python 3.11 reads an enum member through a descriptor (about 100 ns): the per-datagram paths use these names.
_PING, _PONG, _FIND_NODE, _NODES, _ERROR = Kind.PING, Kind.PONG, Kind.FIND_NODE, Kind.NODES, Kind.ERROR


@dataclass(frozen=True)
class RequestOutcome:
    """What became of a request made with `request`/`ping`/`bootstrap`: `message` is set once answered."""

    status: Status
    message: Message | None = None


@dataclass(slots=True)
class _Pending:
    address: Address  # canonical, as `_checked_address` gives the source address of the answer
    contact: Contact | None  # None only for `bootstrap`, where we learn the id from the answer
    answer: Kind
    sent_at: float
    deadline: float
    lookup: int | None = None
    #: False for our own verification pings: nobody asks for their outcome, so none is kept.
    tracked: bool = True


@dataclass
class _Search:
    lookup: Lookup
    txids: dict[int, bytes] = field(default_factory=dict)  # by the asked peer's id value


class OverlayNode:
    """The protocol engine of one node (module docstring): answers requests and drives its own."""

    def __init__(
        self,
        identity: Identity,
        *,
        randomness: random.Random,
        store: RecordStore | None = None,
        k: int = 20,
        alpha: int = 3,
        table: RoutingTable | None = None,
        rtt: RttEstimator | None = None,
        serve: bool = True,
    ) -> None:
        if not isinstance(identity, Identity):
            raise TypeError(f"overlay node identity must be an Identity, not {type(identity).__name__}")
        self.identity = identity
        self.node_id = NodeId.from_public_key(identity.public_key)
        if table is not None and table.own_id != self.node_id:
            raise ValueError("the routing table given belongs to another node id than this identity's")
        self.table = table if table is not None else RoutingTable(self.node_id, k=k)
        self.k = self.table.k
        self.alpha = alpha
        #: False for a light client (a researcher's command): its requests are unbound and it answers no
        #: request, so it never enters another node's routing table or receives records to store.
        self.serve = serve
        self.store = store if store is not None else RecordStore()
        self.rtt = rtt if rtt is not None else RttEstimator()
        #: Why datagrams were dropped (decode codes, "unexpected", "wrong_sender"...): for logs and tests.
        self.dropped: Counter[str] = Counter()
        self._pending: dict[bytes, _Pending] = {}
        #: No earlier than the first deadline of a pending request outside lookups (lookups time out their own).
        self._expiry = math.inf
        self._verifying: set[NodeId] = set()
        #: (sender key ‖ txid) of bound requests admitted without a ping → when to forget it (insertion order).
        self._seen_requests: OrderedDict[bytes, float] = OrderedDict()
        self._outbox: list[Datagram] = []
        self._searches: dict[int, _Search] = {}
        self._results: OrderedDict[int, list[Contact]] = OrderedDict()
        self._outcomes: OrderedDict[bytes, RequestOutcome] = OrderedDict()
        self._lookup_ids = itertools.count(1)
        #: How many requests and lookups have ended so far: a transport wakes whoever awaits an outcome or a
        #: lookup result only when this changes, not after every datagram.
        self.finished = 0
        #: Where transaction ids and token secrets come from: the driver's choice (module docstring).
        self._randbytes = randomness.randbytes
        self._txid_pool, self._txid_offset = b"", 0
        self._secret = self._randbytes(32)
        self._previous_secret = self._randbytes(32)
        self._rotated_at: float | None = None

    # --- the transport's entry points -------------------------------------------------------------------

    def datagram_received(self, data: bytes, address: Address, now: float) -> list[Datagram]:
        """Handle one datagram from `address`; returns what to send (an answer, follow-up requests).

        Never raises for any `data`: a datagram that fails a check is dropped and counted in `dropped`.
        """
        address = _checked_address(address)
        try:
            message = messages.decode(data)
        except MessageRejected as rejected:
            self.dropped[rejected.code] += 1
            return self.poll(now)
        if message.sender_id.value == self.node_id.value:
            self.dropped["own_id"] += 1
        elif message.is_request:
            if self.serve:
                self._answer(message, address, now)
            else:
                self.dropped["not_serving"] += 1
        else:
            self._accept_answer(message, address, now)
        return self.poll(now)

    def poll(self, now: float) -> list[Datagram]:
        """Time out what is overdue, advance lookups, and return every datagram waiting to be sent."""
        if now >= self._expiry:  # poll runs for every datagram: scan the pending requests only when one is due
            self._expiry = math.inf
            for txid, pending in list(self._pending.items()):
                if pending.lookup is not None:
                    continue
                if pending.deadline > now:
                    self._expiry = min(self._expiry, pending.deadline)
                    continue
                del self._pending[txid]
                if pending.tracked:
                    self._settle(txid, RequestOutcome(Status.TIMED_OUT))
                if pending.contact is not None:
                    self._verifying.discard(pending.contact.node_id)
                    self.table.record_failure(pending.contact.node_id, now)
        for lookup_id, search in list(self._searches.items()) if self._searches else ():
            # A timed-out request stays answerable until the lookup ends (`_finish`): its slot goes to the next
            # candidate now, but a late answer still brings its contacts, clears the miss counted here, and
            # gives the RTT estimator the slow sample it needs to stop timing out such peers.
            for contact in search.lookup.expire(now):
                self.table.record_failure(contact.node_id, now)
            if search.lookup.done:
                self._finish(lookup_id, search)
                continue
            for contact in search.lookup.next_requests(now):
                txid = self._send(contact, _FIND_NODE, {"target": search.lookup.target}, now, lookup_id)
                search.txids[contact.node_id.value] = txid
        outbox, self._outbox = self._outbox, []
        return outbox

    def next_deadline(self) -> float | None:
        """When `poll` must next run if no datagram arrives first; None when nothing is outstanding."""
        deadlines = [p.deadline for p in self._pending.values() if p.lookup is None]
        deadlines += [d for s in self._searches.values() if (d := s.lookup.next_deadline()) is not None]
        return min(deadlines, default=None)

    # --- client side ------------------------------------------------------------------------------------

    def request(self, contact: Contact, kind: Kind, body: dict[str, Any], now: float) -> bytes:
        """Queue a request to `contact` (sent by the next `poll`); returns its txid for `outcome()`.

        Raises MessageRejected if the body is not what `kind` takes.
        """
        if not isinstance(contact, Contact):
            raise TypeError(f"request contact must be a Contact, not {type(contact).__name__}")
        if Kind(kind) not in messages.RESPONSE_TO:
            raise ValueError(f"{kind} is an answer, not a request")
        self._check_room()
        return self._send(contact, Kind(kind), body, now)

    def ping(self, contact: Contact, now: float) -> bytes:
        return self.request(contact, Kind.PING, {}, now)

    def bootstrap(self, address: Address, now: float) -> bytes:
        """Ask a node known only by address for the nodes closest to our own id.

        Its answer reveals (and proves) its id, which enters the table, and names our would-be neighbours:
        pass it to `start_lookup(own id, answers=...)` and the join lookup starts from them. Compared with a
        ping first, this saves a round trip, and two datagrams whenever the bootstrap node is not one of our
        k closest (it then need not learn of us).
        """
        address = _checked_address(address)
        self._check_room()
        return self._queue(address, None, Kind.FIND_NODE, {"target": self.node_id}, now, None)

    def outcome(self, txid: bytes) -> RequestOutcome:
        """What became of request `txid`; KeyError if this node never made it (or forgot it, oldest first)."""
        if txid in self._pending:
            return RequestOutcome(Status.WAITING)
        return self._outcomes[txid]

    def forget_outcome(self, txid: bytes) -> None:
        """Drop a settled outcome the caller has read, so a busy node does not hold MAX_OUTCOMES answers."""
        self._outcomes.pop(txid, None)

    def start_lookup(self, target: NodeId, now: float, answers: Iterable[Message] = ()) -> int:
        """Begin finding the k nodes closest to `target`; its requests go out with the next `poll`.

        `answers`: nodes answers already in hand (from `bootstrap`), whose contacts seed the lookup beside our
        table's; a join then asks the bootstrap node again only if it is one of our k closest.
        """
        if not isinstance(target, NodeId):
            raise TypeError(f"lookup target must be a NodeId, not {type(target).__name__}")
        lookup = Lookup(
            target, self.table.closest(target), alpha=self.alpha, k=self.k, rtt=self.rtt, own_id=self.node_id
        )
        for answer in answers:
            if not isinstance(answer, Message) or answer.kind is not Kind.NODES:
                raise ValueError(f"lookup answers must be nodes messages (from bootstrap), got {answer!r:.80}")
            lookup.learn_answer(answer.body["nodes"])
        lookup_id = next(self._lookup_ids)
        self._searches[lookup_id] = _Search(lookup)
        del now  # requests are stamped when `poll` sends them
        return lookup_id

    def lookup_result(self, lookup_id: int) -> list[Contact] | None:
        """The k closest live contacts found, nearest first; None while the lookup runs."""
        if lookup_id in self._searches:
            return None
        if lookup_id not in self._results:
            raise KeyError(f"no lookup {lookup_id!r} was started here (or its result was forgotten)")
        return self._results[lookup_id]

    def forget_lookup(self, lookup_id: int) -> None:
        """Drop a finished lookup's result once the caller has read it (as `forget_outcome`)."""
        self._results.pop(lookup_id, None)

    def running_lookup(self, lookup_id: int) -> Lookup:
        """The state machine of a running lookup, for measurements (hops, requests) once it is done."""
        if lookup_id not in self._searches:
            raise KeyError(f"no lookup {lookup_id!r} is running here")
        return self._searches[lookup_id].lookup

    # --- server side ------------------------------------------------------------------------------------

    def _answer(self, request: Message, address: Address, now: float) -> None:
        """Answer `request`, first taking its sender into the table if it earned that (module docstring).

        An unknown sender of a bound request that is stale or replayed is pinged back at `address`. No ping
        when one of our lookups awaits this very peer's answer at this address: that answer proves the address
        as a pong would (a joining node's lookup would otherwise ping back each peer it asks).
        No ping either when the table has no room for the requester (a full bucket that cannot split, or its
        subnet at the limit): it would not enter the table, so the ping would buy nothing. A newcomer still
        enters the tables that matter, its id's neighbours, whose buckets around it are the sparse ones.
        The ping is queued before the answer on purpose: the requester then still has us in `_verifying`
        (or awaits our answer) when our ping arrives, so it does not ping back in turn. Answering first
        would let two peers that keep each other out of their tables (full bucket, subnet limit) ping each
        other back and forth forever.
        """
        sender = request.sender_id
        known = self._known(sender, address)
        if known is not None:
            self.table.observe(known, now)
        elif request.to is not None:  # an unbound request admits nobody (module docstring)
            contact = Contact.at(sender, *address)
            if self._bound_to_us(request, now) and self.table.has_room_for(contact):
                self.table.observe(contact, now)
            elif (
                not self._awaiting(sender, address)
                and self.table.has_room_for(contact)
                and sender not in self._verifying
                and len(self._verifying) < MAX_VERIFYING
                and len(self._pending) < MAX_PENDING
            ):
                self._verifying.add(sender)
                self._queue(address, contact, Kind.PING, {}, now, None, tracked=False)
        kind, body = self._handle(request, address[0], now)
        self._reply(request, address, kind, body)

    def _handle(self, request: Message, ip: str, now: float) -> tuple[Kind, dict[str, Any]]:
        body = request.body
        kind = request.kind
        if kind is _FIND_NODE:
            return _NODES, {"nodes": self.table.closest(body["target"])}
        if kind is _PING:
            return _PONG, {}
        if kind is Kind.GET_RECORDS:
            held = self.store.get(body["key"], now)[body["skip"] :]
            room = messages.MAX_DATAGRAM - _RECORDS_OVERHEAD
            sent: list[bytes] = []
            for record in held:
                room -= len(record) + 3
                if room < 0:
                    break
                sent.append(record)
            more = len(sent) < len(held)
            return Kind.RECORDS, {"records": sent, "more": more, "token": self._token(ip, now)}
        if not self._token_valid(body["token"], ip, now):
            return _error(
                BAD_TOKEN, "the write token is not one this node gave your address in the last 5-10 min"
            )
        try:
            self.store.put(body["record"], ip, now)
        except RecordRejected as rejected:
            return _error(rejected.code, rejected.message)
        return Kind.ADDED, {}

    def _reply(self, request: Message, address: Address, kind: Kind, body: dict[str, Any]) -> None:
        while True:
            try:
                data = messages.encode(self.identity, kind, request.txid, body)
                break
            except MessageRejected:
                # Only a nodes answer can outgrow a datagram (large k, IPv6 contacts): drop the farthest.
                if not body.get("nodes"):
                    raise
                body = {"nodes": body["nodes"][:-1]}
        self._outbox.append((data, address))

    # --- answers to our requests ------------------------------------------------------------------------

    def _accept_answer(self, answer: Message, address: Address, now: float) -> None:
        pending = self._pending.get(answer.txid)
        if pending is None:
            self.dropped["unexpected"] += 1
            return
        sender = answer.sender_id
        expected = pending.contact
        if pending.address != address or (expected is not None and sender.value != expected.node_id.value):
            # Not popped: a forged answer must not cancel the real one still on its way.
            self.dropped["wrong_sender"] += 1
            return
        if answer.kind is not pending.answer and answer.kind is not _ERROR:
            self.dropped["wrong_kind"] += 1
            return
        del self._pending[answer.txid]
        # The table's own Contact when it has this one (`Contact.at` shares one object per contact anyway).
        contact = self._known(sender, address) or Contact.at(sender, *address)
        self._verifying.discard(sender)
        self.table.observe(contact, now)
        if pending.lookup is None:
            self.rtt.sample(now - pending.sent_at)
            if pending.tracked:
                self._settle(answer.txid, RequestOutcome(Status.ANSWERED, answer))
            return
        search = self._searches[pending.lookup]
        search.txids.pop(contact.node_id.value, None)
        # The lookup knows the peer by the contact it asked (same id and address, maybe spelled otherwise).
        search.lookup.on_reply(pending.contact or contact, answer.body.get("nodes", []), now)

    # --- helpers ----------------------------------------------------------------------------------------

    def _bound_to_us(self, request: Message, now: float) -> bool:
        """True once for a fresh request bound to our id (module docstring); records it against replay."""
        to, at = request.to, request.at
        if to is None or to.value != self.node_id.value or at is None or abs(at - now) > FRESH_REQUEST:
            return False
        seen = self._seen_requests
        while seen and next(iter(seen.values())) <= now:
            seen.popitem(last=False)
        key = request.sender.raw + request.txid
        if key in seen or len(seen) >= MAX_SEEN_REQUESTS:
            return False
        seen[key] = now + 2 * FRESH_REQUEST  # outlives the window on both sides of `at`
        return True

    def _awaiting(self, node_id: NodeId, address: Address) -> bool:
        """True if a running lookup of ours has a request out to `node_id` at `address`."""
        for search in self._searches.values():
            txid = search.txids.get(node_id.value)
            pending = self._pending.get(txid) if txid is not None else None
            if pending is not None and pending.address == address:
                return True
        return False

    def _known(self, node_id: NodeId, address: Address) -> Contact | None:
        """The table's contact for `node_id` if it is at `address` (canonical), else None."""
        entry = self.table.bucket_for(node_id).entries.get(node_id.value)
        if entry is not None and (entry.contact.host, entry.contact.port) == address:
            return entry.contact
        return None

    def _send(
        self, contact: Contact, kind: Kind, body: dict[str, Any], now: float, lookup: int | None = None
    ) -> bytes:
        return self._queue(_checked_address((contact.host, contact.port)), contact, kind, body, now, lookup)

    def _queue(
        self,
        address: Address,
        contact: Contact | None,
        kind: Kind,
        body: dict[str, Any],
        now: float,
        lookup: int | None,
        tracked: bool = True,
    ) -> bytes:
        txid = self._new_txid()
        if contact is None or not self.serve:  # a bootstrap request (no id to bind to yet), or a light client
            data = messages.encode(self.identity, kind, txid, body)
        else:
            data = messages.encode(self.identity, kind, txid, body, to=contact.node_id, at=now)
        timeout = self.rtt.timeout()
        if lookup is None:
            timeout = min(self.rtt.max_timeout, DIRECT_TIMEOUT_FACTOR * timeout)
        deadline = now + timeout
        answer = messages.RESPONSE_TO[kind]
        self._pending[txid] = _Pending(address, contact, answer, now, deadline, lookup, tracked)
        if lookup is None:
            self._expiry = min(self._expiry, deadline)
        self._outbox.append((data, address))
        return txid

    def _new_txid(self) -> bytes:
        """A fresh random transaction id, cut from a pool drawn from the driver's random source 64 ids at a
        time (with a CSPRNG, one system call each instead of one per request)."""
        if self._txid_offset >= len(self._txid_pool):
            self._txid_pool, self._txid_offset = self._randbytes(64 * messages.TXID_SIZE), 0
        start = self._txid_offset
        self._txid_offset = start + messages.TXID_SIZE
        return self._txid_pool[start : self._txid_offset]

    def _check_room(self) -> None:
        """Cap caller-made requests; lookups (α each) and verification pings are bounded separately."""
        if len(self._pending) >= MAX_PENDING:
            raise RuntimeError(f"this node already awaits {MAX_PENDING} answers; let some finish first")

    def _settle(self, txid: bytes, outcome: RequestOutcome) -> None:
        self.finished += 1
        self._outcomes[txid] = outcome
        while len(self._outcomes) > MAX_OUTCOMES:
            self._outcomes.popitem(last=False)

    def _finish(self, lookup_id: int, search: _Search) -> None:
        """Record the result; answers still in flight to peers outside the k closest are no longer awaited."""
        for txid in search.txids.values():
            self._pending.pop(txid, None)
        del self._searches[lookup_id]
        self.finished += 1
        self._results[lookup_id] = search.lookup.result()
        while len(self._results) > MAX_OUTCOMES:
            self._results.popitem(last=False)

    def _token(self, ip: str, now: float) -> bytes:
        self._rotate(now)
        return _mac(self._secret, ip)

    def _token_valid(self, token: bytes, ip: str, now: float) -> bool:
        self._rotate(now)
        return any(hmac.compare_digest(token, _mac(s, ip)) for s in (self._secret, self._previous_secret))

    def _rotate(self, now: float) -> None:
        """Lazily rotate the token secret (no clock of our own); after a long idle gap forget both secrets."""
        if self._rotated_at is None:
            self._rotated_at = now
        elapsed = now - self._rotated_at
        if elapsed < TOKEN_ROTATION:
            return
        keep = self._secret if elapsed < 2 * TOKEN_ROTATION else self._randbytes(32)
        self._previous_secret, self._secret = keep, self._randbytes(32)
        self._rotated_at = now


def _mac(secret: bytes, ip: str) -> bytes:
    packed = ipaddress.ip_address(ip).packed
    return hmac.new(secret, packed, hashlib.sha256).digest()[: messages.TOKEN_SIZE]


def _error(code: str, message: str) -> tuple[Kind, dict[str, Any]]:
    body = {"code": code[: messages.MAX_CODE_LENGTH], "message": message[: messages.MAX_TEXT_LENGTH]}
    return Kind.ERROR, body


def _checked_address(address: Any) -> Address:
    """A transport bug (not remote input), so it raises: (IP literal, port 1..65535), host made canonical."""
    if address.__class__ is tuple and len(address) == 2 and address[1].__class__ is int:
        return _canonical_address(address)  # the port's type checked first: (h, True) would hit (h, 1)
    if not isinstance(address, tuple) or len(address) != 2:
        raise TypeError(f"an address is a (host, port) tuple, got {address!r:.80}")
    raise ValueError(f"an address port must be an int in 1..65535, got {address[1]!r:.40}")


@functools.lru_cache(maxsize=1 << 16)
def _canonical_address(address: tuple[Any, int]) -> Address:
    """Cached because every datagram in and out is checked, and peers are few."""
    host, port = address
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError(f"an address host must be an IP literal, got {host!r:.80}") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"an address port must be an int in 1..65535, got {port!r:.40}")
    return host, port
