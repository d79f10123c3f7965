"""Why the pool refuses: stable codes (peers and tests match on them) and the messages people read, with numbers.

The one error module of `seattle.pool`: every refusal of an acquire, renew or release is a `LeaseRefused`
built here, so the wording of "quota 10/10 (slot 3 held at NODE until T)" lives in one place.
"""

from __future__ import annotations

import time

from seattle.keys import PublicKey
from seattle.refusal import Refused

NODE_DRAINING = "node_draining"
KEY_BLOCKED = "key_blocked"
KEY_BANNED = "key_banned"
RATE_LIMITED = "rate_limited"
QUOTA = "quota"
SLOT_TAKEN = "slot_taken"
KEY_CAP = "key_cap"
POOL_EMPTY = "pool_empty"
NOT_LESSEE = "not_lessee"
LEASE_EXPIRED = "lease_expired"
MAX_AGE = "max_age"
NOT_POOL_VESSEL = "not_pool_vessel"


class LeaseRefused(Refused):
    """The node refuses a pool call: `code` is one of this module's codes, `message` says why with numbers."""


def when(moment: float) -> str:
    """A moment as people read it in a refusal: UTC, to the second."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(moment))


def draining() -> LeaseRefused:
    return LeaseRefused(NODE_DRAINING, "node draining: this node is stopping and grants no new leases")


def blocked(key: PublicKey, until: float) -> LeaseRefused:
    return LeaseRefused(KEY_BLOCKED, f"key blocked: the donor of this node blocked key {key.fingerprint()} "
                                     f"until {when(until)}")


def banned(key: PublicKey, until: float) -> LeaseRefused:
    return LeaseRefused(KEY_BANNED, f"key banned until {when(until)}: key {key.fingerprint()} was granted one "
                                    "slot by two nodes at once (signed evidence)")


def rate_limited(network: str, retry_after: float) -> LeaseRefused:
    return LeaseRefused(RATE_LIMITED, f"too many acquire requests from network {network}; retry in "
                                      f"{max(1, round(retry_after))} s")


def beyond_quota(used: int, quota: int, slot: int) -> LeaseRefused:
    return LeaseRefused(QUOTA, f"quota {used}/{quota} (slot {slot} is beyond it: 10 slots per key, plus 10 per "
                               "node the key donates that has been up 24 h)")


def slot_taken(used: int, quota: int, slot: int, node: PublicKey, until: float) -> LeaseRefused:
    return LeaseRefused(SLOT_TAKEN, f"quota {used}/{quota} (slot {slot} held at {node.fingerprint()} until "
                                    f"{when(until)})")


def key_cap(held: int, cap: int) -> LeaseRefused:
    return LeaseRefused(KEY_CAP, f"this node leases at most {cap} vessels to one key, and the key holds {held}")


def pool_empty(total: int, next_free: float | None) -> LeaseRefused:
    hint = f"; the next lease ends at {when(next_free)}" if next_free is not None else ""
    return LeaseRefused(POOL_EMPTY, f"pool empty: {total} of {total} pool vessels are leased{hint}"
                        if total else "pool empty: this node shares no vessels with the pool")


def not_lessee(vessel: str) -> LeaseRefused:
    return LeaseRefused(NOT_LESSEE, f"vessel {vessel} is not leased to this key (the lease may have ended)")


def not_leased(vessel: str) -> LeaseRefused:
    return LeaseRefused(NOT_LESSEE, f"pool vessel {vessel} is not leased to anyone now")


def lease_expired(vessel: str, expired: float) -> LeaseRefused:
    return LeaseRefused(LEASE_EXPIRED, f"the lease of vessel {vessel} ended at {when(expired)}; acquire again")


def max_age(vessel: str, max_expiry: float) -> LeaseRefused:
    return LeaseRefused(MAX_AGE, f"the lease of vessel {vessel} reached its maximum age: it ends at "
                                 f"{when(max_expiry)} and cannot be renewed past it")


def not_pool_vessel(vessel: str) -> LeaseRefused:
    return LeaseRefused(NOT_POOL_VESSEL, f"vessel {vessel} is not a pool vessel of this node")
