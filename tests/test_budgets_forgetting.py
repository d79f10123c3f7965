"""seattle.budgets: a rate table forgets keys whose buckets have refilled (they equal no entry), so honest
traffic leaves no rows behind, and the limits are exactly those of a table that never forgets."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from seattle.budgets import RateTable, SourceBudget, source_of


def test_a_refilled_key_is_forgotten_when_a_new_one_comes_and_a_busy_one_is_kept() -> None:
    table = RateTable(rate=10.0, burst=5, capacity=100)
    table.take("quiet", 0.0)
    for _ in range(20):
        table.take("busy", 0.0)  # in debt: its bucket refills only at 1.0 s
    table.take("other", 0.5)  # quiet refilled at 0.1 s: forgotten, busy kept
    assert table.keys() == ["busy", "other"]
    assert table.tokens("busy", 0.5) == 0.0 and table.evictions == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.floats(0, 0.5)), max_size=200))
def test_forgetting_refilled_keys_never_changes_a_wait(steps: list[tuple[str, float]]) -> None:
    """Against a plain model of token buckets that keeps every key: the same wait for every take."""
    table = RateTable(rate=4.0, burst=3, capacity=64)
    model: dict[str, tuple[float, float]] = {}
    now = 0.0
    for key, gap in steps:
        now += gap
        tokens, updated = model.get(key, (3.0, now))
        tokens = max(min(3.0, tokens + (now - updated) * 4.0) - 1, -3.0)
        model[key] = (tokens, now)
        assert table.take(key, now) == max(0.0, -tokens / 4.0)
        assert len(table) <= len(model)


def test_a_flooding_source_is_still_refused_and_its_row_kept() -> None:
    budget = SourceBudget(RateTable(500.0, 1000, 4096), RateTable(2000.0, 4000, 4096))
    flood, honest = source_of("203.0.113.9"), source_of("198.51.100.7")
    refused = sum(budget.spend(flood, 0.0) is not None for _ in range(1500))
    assert refused == 500
    for second in range(1, 50):  # an honest peer's datagram a second
        assert budget.spend(honest, float(second)) is None
    assert budget.address.keys() == [flood.address, honest.address]  # forgotten only to make room for a new key
    newcomer = source_of("192.0.2.44")
    assert budget.spend(newcomer, 49.5) is None
    assert budget.address.keys() == [newcomer.address]  # both refilled rows made room for it
    assert budget.spend(flood, 50.0) is None  # back with the full burst it had earned
