"""`seattle acquire`, `renew`, `release` without a network: what they refuse before asking anyone, and the
shape of acquire's --json rows (the loopback runs are in tests/experiment/test_pool_loopback.py)."""

from __future__ import annotations

import json

from seattle.experiment.pool import Attempt
from seattle.keys import generate_identity
from tests.cli_runner import ok
from tests.cli_runner import seattle as run


def test_a_bad_filter_or_duration_is_refused_with_the_grammar() -> None:
    ok("keygen", "me")
    bad_filter = run("acquire", "2", "--where", "country=Germany", "--as", "me", "--node", "127.0.0.1:1")
    assert bad_filter.returncode == 2
    assert "two-letter country code" in bad_filter.stderr and "country=DE|FR" in bad_filter.stderr
    bad_duration = run("acquire", "2", "--for", "9d", "--as", "me", "--node", "127.0.0.1:1")
    assert bad_duration.returncode == 2 and "at most 7 days" in bad_duration.stderr


def test_renew_and_release_need_acquired_vessels() -> None:
    ok("keygen", "me")
    for command in ("renew", "release"):
        result = run(command, "127.0.0.1:1224:v1", "--as", "me")  # a vessel the session knows, not leased
        assert result.returncode == 2
        assert "'127.0.0.1:1224:v1' holds no vessel acquired from the pool" in result.stderr


def test_acquire_json_rows_name_node_slot_outcome_and_target() -> None:
    node = generate_identity("node").public_key
    kept = Attempt(node, "127.0.0.1:1224", 3, "ok", vessel="v2", expires=1_800_000_000.0, number=7)
    refused = Attempt(node, "127.0.0.1:1225", 4, "refused", "slot_taken", "quota 1/10 (slot 4 held at X until T)")
    rows = [json.loads(json.dumps(a.to_json())) for a in (kept, refused)]
    assert rows[0] == {"node": node.to_text(), "address": "127.0.0.1:1224", "slot": 3, "outcome": "ok", "code": "",
                       "message": "", "vessel": "v2", "target": "%7", "expires": 1_800_000_000.0,
                       "released": False}
    assert (rows[1]["outcome"], rows[1]["code"], rows[1]["target"], rows[1]["vessel"]) == \
        ("refused", "slot_taken", None, None)
