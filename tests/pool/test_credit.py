"""The credit cache: a key's attestations are reused for TTL seconds, and at most SIZE keys are kept (LRU)."""

from __future__ import annotations

import pytest

from seattle.keys import generate_identity
from seattle.pool.credit import CREDIT_CACHE_SIZE, CREDIT_TTL, CreditCache
from seattle.pool.formats import Attestation

NOW = 1_800_000_000.0
DONOR = generate_identity("donor")
ALICE = generate_identity("alice").public_key


def test_credit_is_reused_for_its_ttl_then_looked_up_again() -> None:
    assert (CREDIT_TTL, CREDIT_CACHE_SIZE) == (300.0, 1024)
    cache = CreditCache()
    assert cache.get(ALICE, NOW) is None
    attestation = Attestation.verify(Attestation.sign(DONOR, beneficiary=ALICE, up_since=NOW - 90_000, now=NOW), NOW)
    cache.put(ALICE, [attestation], NOW)
    assert cache.get(ALICE, NOW + CREDIT_TTL) == [attestation]
    assert cache.get(ALICE, NOW + CREDIT_TTL + 1) is None and len(cache) == 0
    cache.put(ALICE, [], NOW)  # "no credit" is an answer too
    assert cache.get(ALICE, NOW + 1) == []
    assert cache.get(ALICE, NOW - 1) is None  # a clock that went back does not stretch the TTL


def test_a_flood_of_fresh_keys_keeps_the_cache_bounded_and_the_recent_key() -> None:
    cache = CreditCache(size=8)
    cache.put(ALICE, [], NOW)
    for index in range(100):
        cache.get(ALICE, NOW)  # used all along: never the least recently used
        cache.put(generate_identity(f"k{index}").public_key, [], NOW)
    assert len(cache) == 8 and cache.get(ALICE, NOW) == []


@pytest.mark.parametrize(("ttl", "size"), [(-1.0, 8), (float("nan"), 8), (1.0, 0), (1.0, True)])
def test_nonsense_settings_are_refused(ttl: float, size: int) -> None:
    with pytest.raises(ValueError):
        CreditCache(ttl, size)
