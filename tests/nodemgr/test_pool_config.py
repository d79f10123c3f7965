"""node.json's pool settings: the beneficiary key and the country, checked when made and when read."""

from __future__ import annotations

from pathlib import Path

import pytest

from seattle.errors import BadNodeConfig
from seattle.keys import generate_identity
from seattle.nodemgr.config import NodeConfig

KEY = generate_identity("beneficiary").public_key.to_text()


def test_pool_settings_round_trip_and_old_files_still_read(tmp_path: Path) -> None:
    config = NodeConfig("127.0.0.1", 1224, beneficiary=KEY, country="CH")
    assert NodeConfig.from_json(config.to_json(), tmp_path) == config
    old = '{"format": "seattle-node-config-v1", "host": "127.0.0.1", "port": 1224}'
    assert NodeConfig.from_json(old, tmp_path).beneficiary == ""


@pytest.mark.parametrize(("beneficiary", "country", "words"), [
    ("alice", "", "not a key"), (KEY, "ch", "two-letter"), (KEY, "CHE", "two-letter")])
def test_bad_pool_settings_are_refused(beneficiary: str, country: str, words: str) -> None:
    with pytest.raises(BadNodeConfig, match=words):
        NodeConfig("127.0.0.1", 1224, beneficiary=beneficiary, country=country)
