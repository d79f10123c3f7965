"""One overlay node's protocol engine, sans-IO: datagrams and the time go in, datagrams to send come out.

The same code runs under the trio UDP transport and the network simulator; neither the engine nor the parts
it drives (`RoutingTable`, `Lookup`, `RecordStore`) own a socket or a clock. A transport:

* hands every received datagram to `datagram_received(data, address, now)` and sends what it returns;
* calls `poll(now)` when `next_deadline()` passes (and after `ping`/`request`/`start_lookup`) and sends
  what it returns.

Every datagram is handled in isolation: a source address, payload or answer that fails a check is dropped and
counted in `dropped` under a stable code (`DROP_CODES`), and nothing a peer sends raises out of
`datagram_received`.

Who enters the routing table: only a peer that proved it receives at its address, by a round trip we started.
Either its signed *reply* came from the address we sent a request to, under the id we expected (a reply
matches a random 8-byte transaction id), or its *ack* came from the address we sent a cookie to. A request
proves only the key: its source address may be forged, and a contact learned from a `nodes` answer is only
what a stranger claims. So the answer to the unknown sender of a request *bound* to us (naming our id, sent
within FRESH_REQUEST seconds of our clock) carries a cookie, a MAC (keyed BLAKE2b) of its id ‖ IP ‖ port under the
rotating token secret; the sender's ack brings it back, and only then does the sender enter the table. This
is stateless (nothing is kept for a stranger meanwhile), and one extra datagram proves the address where a
ping back took two. A sender we are already asking in a lookup gets no cookie: its answer proves the address;
nor does one whose id the table holds at another address (an ack never moves a contact, below). An unbound
request (a bootstrap request, whose sender does not know our id yet, or any request of a light client) admits
nobody: a full node's requests that follow are bound, and a light client must stay out of tables. A known
contact sending from its known address is simply refreshed. Contacts pass `_admissible` (the address filter
of `seattle.overlay.addresses`, for our `scope`) before they are asked, learned or admitted; a node on a
private network sends a public requester only public contacts (`_handle`).

Acks are not signed (`messages`): the cookie alone proves the address, and a join's acks, a third of its
datagrams, each cost a signature and a verification. A forged source never sees the cookie sent there, and
an ack from any other address, or naming another id, fails the MAC, as before. What the signature added:
someone who sees a fresh request on its way to us (on the path between its sender J and us) and receives at an
address A of its own could replay it from A within FRESH_REQUEST and ack the cookie sent to A, putting J's id
at A into our table. So an ack admits only an id the table does not hold, and refreshes one only at the
address it holds (the MAC checked either way); the planted contact cannot answer as J (answers are signed
and matched to the id asked), so its first `max_failures` unanswered requests drop it, and meanwhile J's own
ack is refused. Such an observer delays J's admission here, which, being on J's path, it could also do by
dropping J's datagrams; it gains no place in the table for an id of its own.

No amplification: to an address not proven (not in our table as that sender's), the answer to a request,
cookie included, is at most as many bytes as that request. `nodes` and `records` answers then carry fewer
entries, an error a shorter message, and a request too small for even a bare answer is dropped
(`short_request`). Our own requests are padded (`messages.encode(pad_to=)`) to what their full answer and a
cookie take (`_pad_to`), so a peer that does not know us yet still answers in full.

Write tokens (BitTorrent BEP 5): `get_records` answers carry HMAC-SHA256(secret, requester IP), and
`add_record` is accepted only with a token for the sender's IP under the current or the previous secret.
Secrets rotate every TOKEN_ROTATION seconds, so a token lives 5 to 10 minutes, and a spoofed-source writer,
who never sees the answers sent to the address it forges, cannot store anything.

Reachability (`seattle.overlay.reachability`, when the driver gives the engine a `Tracker`): every answer
says where we saw its requester (`seen`), and the answers to our own requests feed the tracker's observations.
When the tracker wants a check, `poll` sends `dial_back` requests to peers of the table. Serving one
(`_serve_dial_back`) sends a probe, from the driver's other port (`take_probes`), to the address the request
came from and to nowhere else (the request names no address), and, when the requester asks and the driver
can, has the driver open a TCP connection to that IP and port (`take_tcp_dials`, `tcp_dialed`). It is served
only for a fresh request bound to us, within DIAL_BACKS_PER_ADDRESS and DIAL_BACKS_PER_NETWORK a minute for
the requester's address and /24 (or /48) and DIAL_BACKS_PER_MINUTE for everyone, with at most MAX_TCP_DIALS
TCP dials at once; and only if the request paid for the answer and the probe both (padding), so a forged
source gains no amplification: it receives one probe and one small answer, as often as the budgets allow.

DHT clients: a node the tracker does not find `public` (`client`; `reachability` says when one still unknown
counts) marks its requests `client`. A receiver never admits such a sender (no cookie, so no ack admits it)
nor refreshes it, so clients are never handed out in `nodes` answers; nobody else asks them anything, so
their answers need no mark. A client refuses to store records (NOT_STORING) but looks up and publishes like
anyone. A node found public after it asked peers as a client looks up its own id again, as a join does, so
its neighbours meet it as a full node.

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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

from seattle.budgets import RateTable, SourceBudget, source_of
from seattle.keys import Identity
from seattle.overlay import addresses, messages
from seattle.overlay.addresses import Scope
from seattle.overlay.lookup import Lookup, RttEstimator
from seattle.overlay.messages import Ack, Kind, Message, MessageRejected, Probe
from seattle.overlay.nodeid import DEFAULT_NETWORK, Contact, NetworkParameters, NodeId, id_is_bound, unpack_contact
from seattle.overlay.reachability import CHECK_TIMEOUT, Tracker
from seattle.overlay.records import RecordRejected
from seattle.overlay.routing import RoutingTable
from seattle.overlay.store import RecordStore

Address = tuple[str, int]
Datagram = tuple[bytes, Address]
#: An answer's body as it fits the room it has, and the `seen` it carries (None when that did not fit).
_Fitted = tuple[dict[str, Any], Address | None]

TOKEN_ROTATION = 300.0
BAD_TOKEN = "bad_token"
#: Error codes: a DHT client stores nothing; a dial-back request not bound to us and fresh, or over budget.
NOT_STORING = "not_storing"
DIAL_BACK_UNBOUND = "dial_back_unbound"
DIAL_BACK_LIMITED = "dial_back_limited"
#: Dial-backs served a minute per requester address, per its /24 (/48), and to everyone together (bursts
#: the same); TCP dials in flight at once, and how long the driver may take to report one.
DIAL_BACKS_PER_ADDRESS = 2
DIAL_BACKS_PER_NETWORK = 6
DIAL_BACKS_PER_MINUTE = 60
DIAL_BACK_SOURCES = 1024
MAX_TCP_DIALS = 8
TCP_DIAL_TIMEOUT = 3.0
#: Bounds on per-peer state, so a flood of requests or requests-to-send cannot grow memory without limit.
MAX_PENDING = 4096
MAX_OUTCOMES = 4096
#: How far a bound request's send time may be from our clock (either way) for its sender to get a cookie: a
#: capture replayed later from a forged source gets none.
FRESH_REQUEST = 30.0
#: A request outside lookups (get_records, add_record, ping) waits this many lookup timeouts. A lookup can
#: cut its wait short because a late answer still counts (`poll`); a direct request's late answer is lost, and
#: many sent at once (a `find_records` asks 20 holders) queue behind each other at a busy node.
DIRECT_TIMEOUT_FACTOR = 4
#: The cookie MAC's personalisation (BLAKE2b's domain separation, at most 16 bytes): `_cookie_mac`.
_COOKIE_PERSON = b"overlay/cookie"
#: Room left in a `records` answer for everything but the records (header, token, msgpack framing).
_RECORDS_OVERHEAD = 200

#: Why `datagram_received` dropped a datagram (or left a request unanswered), as counted in `dropped`.
BAD_SOURCE = "bad_source"  # the source address is no peer's within our scope (port 0, special use, wider)
OWN_ID = "own_id"
NOT_SERVING = "not_serving"
UNEXPECTED = "unexpected"  # an answer to no request of ours (or one that already ended)
WRONG_SENDER = "wrong_sender"
WRONG_KIND = "wrong_kind"
SHORT_REQUEST = "short_request"  # from an unproven address, too small for even a bare answer
BAD_COOKIE = "bad_cookie"  # an ack whose cookie is not the one we gave that id at that address
KNOWN_ELSEWHERE = "known_elsewhere"  # a valid ack for an id our table holds at another address
FILTERED_CONTACT = "filtered_contact"  # a contact new to a lookup that it will not ask (counted per answer)
DROP_CODES = (
    *messages.CHECK_ORDER, BAD_SOURCE, OWN_ID, NOT_SERVING, UNEXPECTED, WRONG_SENDER, WRONG_KIND,
    SHORT_REQUEST, BAD_COOKIE, KNOWN_ELSEWHERE, FILTERED_CONTACT,
)


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


@dataclass(slots=True)
class _Dialing:
    """A dial-back we serve whose TCP dial the driver is making: whom to answer, and by when."""

    request: Message
    address: Address
    deadline: float


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
        scope: Scope = Scope.GLOBAL,
        network: NetworkParameters = DEFAULT_NETWORK,
        reachability: Tracker | None = None,
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
        #: The overlay's parameters: the id puzzle every contact admitted must have solved.
        self.network = network
        #: The widest address scope this node runs on (`seattle.overlay.addresses`): it talks to no address
        #: beyond it. A driver widens it to where the node is bound (`widen_scope`), `bootstrap` to where
        #: its bootstrap nodes are; simulations on fake 127.x/10.x addresses pass LOOPBACK.
        self.scope = Scope(scope)
        self.store = store if store is not None else RecordStore()
        self.rtt = rtt if rtt is not None else RttEstimator()
        #: Why datagrams were dropped (`DROP_CODES`), for stats, logs and tests.
        self.dropped: Counter[str] = Counter()
        self._pending: dict[bytes, _Pending] = {}
        #: No earlier than the first deadline of a pending request outside lookups (lookups time out their own).
        self._expiry = math.inf
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
        self._pad_to = _paddings(self.k)
        self._random = randomness
        #: Measures this node's reachability (module docstring); None: not measured, always a full node.
        self.reachability = reachability
        #: The address this host sends from toward a peer IP (None: unknown): the driver's, for the tracker.
        self.local_ip: Callable[[str], str | None] = lambda _peer: None
        #: Whether the driver dials TCP for a dial-back (`take_tcp_dials`): the UDP driver does.
        self.tcp_dialer = False
        #: Whether we sent a bound request (other than a dial-back) as a client: its receiver did not admit us.
        self._unadmitted = False
        #: The own-id lookup that announces a node found public (`_poll_reachability`), while it runs.
        self._announce: int | None = None
        #: Our own dial-back requests in flight: txid -> nonce.
        self._checking: dict[bytes, bytes] = {}
        self._probes: list[Datagram] = []
        self._tcp_dials: list[tuple[int, Address]] = []
        self._dialing: dict[int, _Dialing] = {}
        self._dial_tokens = itertools.count(1)
        self._dial_budget = SourceBudget(
            RateTable(DIAL_BACKS_PER_ADDRESS / 60, DIAL_BACKS_PER_ADDRESS, DIAL_BACK_SOURCES),
            RateTable(DIAL_BACKS_PER_NETWORK / 60, DIAL_BACKS_PER_NETWORK, DIAL_BACK_SOURCES))
        self._dial_total = RateTable(DIAL_BACKS_PER_MINUTE / 60, DIAL_BACKS_PER_MINUTE, 1)

    @property
    def client(self) -> bool:
        """Whether this node acts as a DHT client now (module docstring)."""
        return self.reachability is not None and self.reachability.client

    # --- the transport's entry points -------------------------------------------------------------------

    def datagram_received(self, data: bytes, address: Address, now: float) -> list[Datagram]:
        """Handle one datagram from `address`; returns what to send (an answer, follow-up requests).

        Never raises for any `data` or `address`: a datagram that fails a check is dropped and counted in
        `dropped` under its code (`DROP_CODES`), leaving the table, the store and pending requests as they were.
        """
        source = _source_address(address)
        if source is None or not addresses.reachable(self.scope, *source):
            self.dropped[BAD_SOURCE] += 1
            return self.poll(now)
        address = source
        try:
            message = messages.decode(data)
        except MessageRejected as rejected:
            self.dropped[rejected.code] += 1
            return self.poll(now)
        if isinstance(message, Probe):
            if self.reachability is None or not self.reachability.probed(message.nonce):
                self.dropped[UNEXPECTED] += 1
        elif message.sender_id.value == self.node_id.value:
            self.dropped[OWN_ID] += 1
        elif isinstance(message, Ack):
            if self.serve:
                self._acked(message, address, now)
            else:
                self.dropped[NOT_SERVING] += 1
        elif not self.serve and message.is_request:
            self.dropped[NOT_SERVING] += 1
        elif message.is_request:
            self._answer(message, len(data), address, now)
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
                nonce = self._checking.pop(txid, None)
                if nonce is not None and self.reachability is not None:
                    self.reachability.failed(nonce, now)
                else:
                    self._settle(txid, RequestOutcome(Status.TIMED_OUT))
                if pending.contact is not None:
                    self.table.record_failure(pending.contact.node_id, now)
        if self.reachability is not None:  # before the lookups: it may start one
            self._poll_reachability(now)
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
        if self._dialing:
            for token, dialing in list(self._dialing.items()):
                if dialing.deadline <= now:  # the driver never reported: not reached, as far as we know
                    self.tcp_dialed(token, False, now)
        outbox, self._outbox = self._outbox, []
        return outbox

    def next_deadline(self) -> float | None:
        """When `poll` must next run if no datagram arrives first; None when nothing is outstanding."""
        deadlines = [p.deadline for p in self._pending.values() if p.lookup is None]
        deadlines += [d for s in self._searches.values() if (d := s.lookup.next_deadline()) is not None]
        deadlines += [dialing.deadline for dialing in self._dialing.values()]
        if self.reachability is not None:
            deadlines.append(self.reachability.next_deadline())
        return min(deadlines, default=None)

    # --- dial-backs: the driver's side (module docstring) -------------------------------------------------

    def take_probes(self) -> list[Datagram]:
        """The probes to send from the driver's other port (not the overlay's), each to its address."""
        probes, self._probes = self._probes, []
        return probes

    def take_tcp_dials(self) -> list[tuple[int, Address]]:
        """The TCP dials to make, (token, address): open a connection to the address (from any port but the
        overlay's), close it, and report with `tcp_dialed(token, reached, now)` within TCP_DIAL_TIMEOUT."""
        dials, self._tcp_dials = self._tcp_dials, []
        return dials

    def tcp_dialed(self, token: int, reached: bool, now: float) -> None:
        """The driver's TCP dial `token` ended: answer its dial-back (sent by the next `poll`). A token
        already answered (its deadline passed first) is ignored."""
        dialing = self._dialing.pop(token, None)
        if dialing is not None:
            self._reply(dialing.request, dialing.address, Kind.DIALED, ({"tcp": bool(reached)}, dialing.address))

    def _poll_reachability(self, now: float) -> None:
        """End a check whose time has come; start one when due, asking peers of the table."""
        tracker = self.reachability
        assert tracker is not None
        was_client = tracker.client
        tracker.poll(now, self.local_ip)
        if was_client and not tracker.client and self._unadmitted:
            # Found public after asking peers as a client (a join's lookup): they took us into no table, so
            # meet our neighbours again as a join does (the result is not needed: the round trips and acks
            # do the work).
            self._unadmitted = False
            self._announce = self.start_lookup(self.node_id, now)
        if self._announce is not None and self._announce not in self._searches:  # it ended
            self.forget_lookup(self._announce)
            self._announce = None
        if not tracker.due(now):
            return
        for contact, nonce in tracker.start(list(self.table), now, self._random):
            txid = self._queue(_checked_address((contact.host, contact.port)), contact, Kind.DIAL_BACK,
                               {"nonce": nonce, "tcp": tracker.tcp}, now, None, timeout=CHECK_TIMEOUT)
            self._checking[txid] = nonce

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
        self.widen_scope(addresses.bound_scope(address[0]))
        self._check_room()
        return self._queue(address, None, Kind.FIND_NODE, {"target": self.node_id}, now, None)

    def widen_scope(self, scope: Scope) -> None:
        """Take `scope` into this node's `scope`: the driver's bound address, a bootstrap node the owner
        named. Never narrows: a node on 127.0.0.1 that bootstraps from a public address still reaches both."""
        self.scope = max(self.scope, Scope(scope))

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
            lookup.learn_answer(answer.body["nodes"], self._learnable)
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

    def _answer(self, request: Message, size: int, address: Address, now: float) -> None:
        """Answer `request` (`size` bytes on the wire); an unknown sender's answer may carry a cookie.

        The cookie goes to the unknown sender of a fresh request bound to us (module docstring), except when
        one of our lookups awaits this very peer's answer at this address (that answer proves the address),
        or the table has no room for it (a full bucket that cannot split, or its subnet at the limit: it would
        not enter, so its ack would buy nothing), or holds its id at another address (an ack would not move
        it), or the request did not pay for the cookie's bytes. A DHT client's request gets no cookie, and
        its sender is neither admitted nor refreshed (module docstring).
        """
        if request.kind is Kind.DIAL_BACK:
            self._serve_dial_back(request, size, address, now)
            return
        sender = request.sender_id
        held = self.table.bucket_for(sender).entries.get(sender.value)
        kind, body = self._handle(request, address[0], now)
        if request.client:
            pass  # a DHT client: answered within its request's size, never admitted nor refreshed
        elif held is not None and (held.contact.host, held.contact.port) == address:
            self.table.observe(held.contact, now)  # a proven address: answered in full (as a datagram holds)
            if not self._reply_within(request, address, kind, body, messages.MAX_DATAGRAM):
                self.dropped[SHORT_REQUEST] += 1
            return
        elif held is None and self._bound_to_us(request, now) and not self._awaiting(sender, address):
            contact = Contact.at(sender, *address)  # (an unbound request admits nobody)
            if (self.table.has_room_for(contact) and self._admissible(contact)
                    and self._reply_within(request, address, kind, body, size, self._cookie(contact, now))):
                return
        # Everything sent to this unproven address for this request fits in `size` (module docstring).
        if not self._reply_within(request, address, kind, body, size):
            self.dropped[SHORT_REQUEST] += 1

    def _serve_dial_back(self, request: Message, size: int, address: Address, now: float) -> None:
        """Probe `address`, where the request came from, and have the driver dial its TCP port if asked
        (module docstring); answer at once, or when the TCP dial ends. The request paid for the answer and the
        probe, or nothing is sent; a refusal (unbound, over budget) is an error answer within its size."""
        needed = messages.encoded_size(Kind.DIALED, {"tcp": False}, seen=address)
        if size < needed + messages.PROBE_SIZE:
            self.dropped[SHORT_REQUEST] += 1
            return
        refusal = None
        tcp = request.body["tcp"] and self.tcp_dialer
        if not self._bound_to_us(request, now):
            refusal = _error(DIAL_BACK_UNBOUND, "a dial-back request must be bound to this node, and fresh")
        elif (self._dial_total.tokens("", now) < 1 or (tcp and len(self._dialing) >= MAX_TCP_DIALS)
              or self._dial_budget.spend(source_of(address[0]), now) is not None):
            refusal = _error(DIAL_BACK_LIMITED, f"this node dials back {DIAL_BACKS_PER_ADDRESS} times a minute "
                             f"per address, {DIAL_BACKS_PER_NETWORK} per network, {DIAL_BACKS_PER_MINUTE} in all")
        if refusal is not None:
            self._reply(request, address, refusal[0], self._fit(*refusal, size, address))
            return
        self._dial_total.take("", now)
        self._probes.append((messages.encode_probe(request.body["nonce"]), address))
        if not tcp:
            self._reply(request, address, Kind.DIALED, ({"tcp": None}, address))
            return
        token = next(self._dial_tokens)
        self._dialing[token] = _Dialing(request, address, now + TCP_DIAL_TIMEOUT)
        self._tcp_dials.append((token, address))

    def _acked(self, ack: Ack, address: Address, now: float) -> None:
        """An ack brings back the cookie of an answer we sent to `address`: its sender receives there. It is
        unsigned, so it admits only an id the table does not hold yet, and refreshes one only where the table
        holds it (module docstring)."""
        sender = ack.sender_id
        packed = Contact.pack(sender, *address)  # the contact is made (and cached) only for a valid cookie
        if not self._cookie_valid(ack.cookie, packed, now):
            self.dropped[BAD_COOKIE] += 1
            return
        contact = unpack_contact(packed)
        held = self.table.bucket_for(sender).entries.get(sender.value)
        if held is not None and (held.contact.host, held.contact.port) != address:
            self.dropped[KNOWN_ELSEWHERE] += 1
        elif self._admissible(contact):
            self.table.observe(contact, now)

    def _handle(self, request: Message, ip: str, now: float) -> tuple[Kind, dict[str, Any]]:
        body = request.body
        kind = request.kind
        if kind is _FIND_NODE:
            nodes = self.table.closest(body["target"])
            # A node on a private network tells a public requester only of public contacts: it could reach no
            # others, and our LAN's layout is none of its business. A loopback network is one machine, or the
            # simulator, whose fake 127.x and 10.x addresses all reach each other: nothing to hide there.
            scope = addresses.scope_of(ip)
            if self.scope is not Scope.LOOPBACK and scope is not None and scope < self.scope:
                nodes = [c for c in nodes if addresses.reachable(scope, c.host, c.port)]
            return _NODES, {"nodes": nodes}
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
        if self.client:
            return _error(NOT_STORING, "this node is a DHT client (strangers cannot reach it): it stores nothing")
        if not self._token_valid(body["token"], ip, now):
            return _error(
                BAD_TOKEN, "the write token is not one this node gave your address in the last 5-10 min"
            )
        try:
            self.store.put(body["record"], ip, now)
        except RecordRejected as rejected:
            return _error(rejected.code, rejected.message)
        return Kind.ADDED, {}

    def _reply(
        self, request: Message, address: Address, kind: Kind, fitted: _Fitted | None, cookie: bytes | None = None,
    ) -> None:
        """Queue the answer `_fit` left; None (no form of it fits what the request paid for) is counted."""
        if fitted is None:
            self.dropped[SHORT_REQUEST] += 1
            return
        body, seen = fitted
        self._outbox.append((messages.encode(self.identity, kind, request.txid, body, cookie=cookie, seen=seen),
                             address))

    def _reply_within(self, request: Message, address: Address, kind: Kind, body: dict[str, Any], room: int,
                      cookie: bytes | None = None) -> bool:
        """Queue the answer to `request` in at most `room` bytes, with `cookie` if given: in full when it fits
        (the usual case: a padded request, or a proven address), packed and signed once; else as `_fit` cuts
        it. False, and nothing queued, when no form of it fits."""
        try:
            data = messages.encode(self.identity, kind, request.txid, body, cookie=cookie, seen=address, limit=room)
        except MessageRejected as rejected:
            if rejected.code != messages.TOO_LARGE:
                raise
            fitted = self._fit(kind, body, room, address, cookie=cookie is not None)
            if fitted is None:
                return False
            data = messages.encode(self.identity, kind, request.txid, fitted[0], cookie=cookie, seen=fitted[1])
        self._outbox.append((data, address))
        return True

    def _fit(self, kind: Kind, body: dict[str, Any], room: int, address: Address,
             cookie: bool = False) -> _Fitted | None:
        """`_shrunk` for our answer to `address`, saying it saw the requester there; without saying so
        when even the bare answer would not fit (an unpadded request from an unproven address)."""
        shrunk = _shrunk(kind, body, room, cookie, seen=address)
        if shrunk is not None:
            return shrunk, address
        shrunk = _shrunk(kind, body, room, cookie)
        return None if shrunk is None else (shrunk, None)

    # --- answers to our requests ------------------------------------------------------------------------

    def _accept_answer(self, answer: Message, address: Address, now: float) -> None:
        pending = self._pending.get(answer.txid)
        if pending is None:
            self.dropped[UNEXPECTED] += 1
            return
        sender = answer.sender_id
        expected = pending.contact
        if pending.address != address or (expected is not None and sender.value != expected.node_id.value):
            # Not popped: a forged answer must not cancel the real one still on its way.
            self.dropped[WRONG_SENDER] += 1
            return
        if answer.kind is not pending.answer and answer.kind is not _ERROR:
            self.dropped[WRONG_KIND] += 1
            return
        del self._pending[answer.txid]
        # The table's own Contact when it has this one (`Contact.at` shares one object per contact anyway).
        contact = self._known(sender, address) or Contact.at(sender, *address)
        if answer.cookie is not None and self.serve and not self.client:  # asked to prove our address: one ack
            self._outbox.append((messages.encode_ack(self.node_id, answer.cookie), address))
        if self._admissible(contact):  # a round trip to this address: the one way into the table
            self.table.observe(contact, now)
        tracker = self.reachability
        if tracker is not None:
            if answer.seen is not None:
                tracker.observe(address[0], answer.seen, now)
            if not tracker.measurable:
                tracker.note_peers([*self.table, *answer.body.get("nodes", ())])
        nonce = self._checking.pop(answer.txid, None)
        if nonce is not None and tracker is not None:
            if answer.kind is Kind.DIALED:
                tracker.answered(nonce, answer.body["tcp"], now)
            else:
                tracker.failed(nonce, now)
            return
        if pending.lookup is None:
            self.rtt.sample(now - pending.sent_at)
            self._settle(answer.txid, RequestOutcome(Status.ANSWERED, answer))
            return
        search = self._searches[pending.lookup]
        search.txids.pop(contact.node_id.value, None)
        # The lookup knows the peer by the contact it asked (same id and address, maybe spelled otherwise).
        search.lookup.on_reply(pending.contact or contact, answer.body.get("nodes", []), now, admit=self._learnable)

    # --- helpers ----------------------------------------------------------------------------------------

    def _bound_to_us(self, request: Message, now: float) -> bool:
        """True for a fresh request bound to our id (module docstring): its sender may get a cookie."""
        to, at = request.to, request.at
        return to is not None and to.value == self.node_id.value and at is not None and abs(at - now) <= FRESH_REQUEST

    def _admissible(self, contact: Contact) -> bool:
        """Whether `contact` may be asked, learned or admitted to the table: the one check on every way in.

        Its address must be one our scope reaches (`seattle.overlay.addresses`), and its id must be bound to
        work under our network's puzzle (`seattle.overlay.nodeid.id_is_bound`), so ids placed near a key cost
        their owner that work. Unbound senders (light clients) are still answered; they never get in.
        """
        return (addresses.reachable(self.scope, contact.host, contact.port)
                and id_is_bound(contact.node_id, self.network))

    def _learnable(self, contact: Contact) -> bool:
        """Whether a lookup may learn `contact`, new to it, from a nodes answer: `_admissible`; a contact
        refused is counted and forgotten."""
        if self._admissible(contact):
            return True
        self.dropped[FILTERED_CONTACT] += 1
        return False

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
        timeout: float | None = None,
    ) -> bytes:
        txid = self._new_txid()
        pad_to = self._pad_to[kind]
        client = self.client
        if contact is None or not self.serve:  # a bootstrap request (no id to bind to yet), or a light client
            data = messages.encode(self.identity, kind, txid, body, pad_to=pad_to, client=client)
        else:
            self._unadmitted = self._unadmitted or (client and kind is not Kind.DIAL_BACK)
            data = messages.encode(self.identity, kind, txid, body, to=contact.node_id, at=now, pad_to=pad_to,
                                   client=client)
        if timeout is None:
            timeout = self.rtt.timeout()
            if lookup is None:
                timeout = min(self.rtt.max_timeout, DIRECT_TIMEOUT_FACTOR * timeout)
        deadline = now + timeout
        answer = messages.RESPONSE_TO[kind]
        self._pending[txid] = _Pending(address, contact, answer, now, deadline, lookup)
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

    def _cookie(self, contact: Contact, now: float) -> bytes:
        self._rotate(now)
        return _cookie_mac(self._secret, contact.packed)

    def _cookie_valid(self, cookie: bytes, packed: bytes, now: float) -> bool:
        """Whether `cookie` is the one for the contact `packed` names, given under the current or the previous
        secret: a cookie lives 5 to 10 minutes, as a token."""
        self._rotate(now)
        return any(
            hmac.compare_digest(cookie, _cookie_mac(s, packed)) for s in (self._secret, self._previous_secret)
        )

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


@functools.lru_cache(maxsize=8)
def _paddings(k: int) -> Mapping[Kind, int]:
    """What each request is padded to: its full answer with a cookie, which a peer that does not know us yet
    adds (module docstring), and the widest `seen`. A nodes answer is sized for k IPv6
    contacts, the largest; a records answer may fill a datagram. An add_record carries a record and a token,
    larger than its answer already. A dial_back pays for its answer and the probe (`_serve_dial_back`).
    Cached (read-only), as every node of a k computes the same, and a simulation starts thousands."""
    widest = [Contact(NodeId(number), "::1", 1) for number in range(1, k + 1)]  # any IPv6 address: 50 bytes
    extras: dict[str, Any] = {"cookie": True, "seen": ("::1", 1)}
    nodes = messages.encoded_size(_NODES, {"nodes": widest}, **extras)
    return MappingProxyType({
        _PING: messages.encoded_size(_PONG, {}, **extras),
        _FIND_NODE: min(messages.MAX_DATAGRAM, nodes),  # a larger k's answer is cut to a datagram anyway
        Kind.GET_RECORDS: messages.MAX_DATAGRAM,
        Kind.ADD_RECORD: 0,
        Kind.DIAL_BACK: messages.encoded_size(Kind.DIALED, {"tcp": False}, **extras) + messages.PROBE_SIZE,
    })


def _shrunk(kind: Kind, body: dict[str, Any], room: int, cookie: bool = False, *,
            seen: Address | None = None) -> dict[str, Any] | None:
    """`body`, or a shorter form of it, whose answer (with a cookie if `cookie`, and `seen`) encodes to at
    most `room` bytes; None if none does.

    A nodes answer drops its farthest contacts, a records answer its last records (and says there are
    `more`), an error its message; the other answers have one size. Items are dropped by their estimated
    cost first (bytes and a 2-byte header each), so a stranger's small request costs two encodings, not one
    per dropped contact.
    """
    while True:
        size = messages.encoded_size(kind, body, cookie=cookie, seen=seen)
        if size <= room:
            return body
        field = "nodes" if body.get("nodes") else "records" if body.get("records") else None
        if field is None:
            if not body.get("message"):
                return None
            body = {**body, "message": ""}
            continue
        items = body[field]
        keep, excess = len(items), size - room
        while keep and excess > 0:
            keep -= 1
            item = items[keep]
            excess -= 2 + len(item.packed if field == "nodes" else item)
        body = {field: items[:keep]} if field == "nodes" else {**body, "records": items[:keep], "more": True}


def _cookie_mac(secret: bytes, packed: bytes) -> bytes:
    """The cookie for a contact by its packed form (id ‖ IP ‖ port): keyed BLAKE2b, one C call where HMAC
    makes several (every ack checks one, every admitting answer makes one), personalised so no other MAC
    under the same secret (a write token) can pass for one. Only this node ever checks its own cookies, so
    how they are made is no part of the wire format."""
    return hashlib.blake2b(packed, digest_size=messages.COOKIE_SIZE, key=secret, person=_COOKIE_PERSON).digest()


def _mac(secret: bytes, ip: str) -> bytes:
    packed = ipaddress.ip_address(ip).packed
    return hmac.digest(secret, packed, "sha256")[: messages.TOKEN_SIZE]


def _error(code: str, message: str) -> tuple[Kind, dict[str, Any]]:
    body = {"code": code[: messages.MAX_CODE_LENGTH], "message": message[: messages.MAX_TEXT_LENGTH]}
    return Kind.ERROR, body


def _source_address(address: Any) -> Address | None:
    """A datagram's source, canonical, or None if it is not an (IP literal, port 1..65535) pair: remote input."""
    if address.__class__ is not tuple or len(address) != 2:
        return None
    host, port = address
    if host.__class__ is not str or port.__class__ is not int or not 1 <= port <= 65535:
        return None
    try:
        return _canonical_address(address)
    except ValueError:
        return None


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
