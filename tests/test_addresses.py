"""Address parsing shared by the node, the profile, browse and the researcher's commands."""

from __future__ import annotations

import pytest

from seattle.addresses import parse_address, split_ip_port
from seattle.errors import BadNodeAddress


def test_split_ip_port_takes_ipv4_and_bracketed_ipv6() -> None:
    assert split_ip_port("10.0.0.5:1224") == ("10.0.0.5", 1224)
    assert split_ip_port("[2001:db8::5]:80") == ("2001:db8::5", 80)


@pytest.mark.parametrize(("text", "words"), [
    ("10.0.0.5", "no ':PORT'"),
    (":1224", "no ':PORT'"),
    ("10.0.0.5:0", "from 1 to 65535"),
    ("10.0.0.5:http", "from 1 to 65535"),
    ("example.org:1224", "not an IP address"),
    ("1" * 65, "at most 64 characters"),
    (1224, "must be text"),
])
def test_split_ip_port_says_what_is_wrong(text: object, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        split_ip_port(text)


def test_parse_address_allows_names_but_wants_brackets_for_ipv6() -> None:
    assert parse_address("node.example:1224") == ("node.example", 1224)
    with pytest.raises(BadNodeAddress, match="brackets"):
        parse_address("::1:80")
