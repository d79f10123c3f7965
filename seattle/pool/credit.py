"""Attestations found for a key, kept a little while: a node need not look a key's credit up at every request.

    cache = CreditCache()
    credit = cache.get(researcher, now)          # None: not known (or too old): look it up, then
    cache.put(researcher, found, now)

Sans-IO (the caller passes the time). An attestation lives hours (`MAX_ATTESTATION_LIFETIME`) and `quota`
checks each one's times when it counts, so what a cached list can get wrong is only a donor that stopped
within the last TTL seconds: its credit counts at most that much longer. Renewals, which must notice that, look
up afresh. Bounded: at most `size` keys, the least recently used going first, so a flood of fresh keys costs a
fixed amount of memory (what each key's lookup found is itself bounded by the directory).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from seattle.keys import PublicKey
from seattle.pool.formats import Attestation

#: How long a key's looked-up credit is used before it is looked up again.
CREDIT_TTL = 300.0
#: Keys whose credit is kept at most.
CREDIT_CACHE_SIZE = 1024


class CreditCache:
    """Verified attestations by beneficiary, each list kept `ttl` seconds, at most `size` keys (LRU)."""

    def __init__(self, ttl: float = CREDIT_TTL, size: int = CREDIT_CACHE_SIZE) -> None:
        if not ttl >= 0 or isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"ttl must be >= 0 and size a positive integer, got {ttl!r}, {size!r}")
        self.ttl = ttl
        self.size = size
        self._held: OrderedDict[bytes, tuple[float, tuple[Attestation, ...]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._held)

    def get(self, beneficiary: PublicKey, now: float) -> list[Attestation] | None:
        """The attestations looked up for `beneficiary` within the last `ttl` seconds, or None."""
        held = self._held.get(beneficiary.raw)
        if held is None:
            return None
        if not 0 <= now - held[0] <= self.ttl:
            del self._held[beneficiary.raw]
            return None
        self._held.move_to_end(beneficiary.raw)
        return list(held[1])

    def put(self, beneficiary: PublicKey, attestations: Sequence[Attestation], now: float) -> None:
        """Keep what a lookup of `beneficiary`'s credit found at `now` (an empty list too: no credit)."""
        self._held[beneficiary.raw] = (now, tuple(attestations))
        self._held.move_to_end(beneficiary.raw)
        while len(self._held) > self.size:
            self._held.popitem(last=False)
