"""What `node.json` holds: where a node listens, which local IPs its vessels may bind, which overlay nodes it
joins through; checked when made and when parsed, so a damaged file is refused with the reason.

    config = NodeConfig("127.0.0.1", 1224, bootstrap=("10.0.0.2:1224",))
    text = config.to_json()                          # what `NodeDir.write_config` stores
    NodeConfig.from_json(text, path)                 # BadNodeConfig naming `path` if anything is wrong
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seattle.addresses import split_ip_port
from seattle.errors import BadNodeConfig, SeattleError
from seattle.keys import PublicKey

CONFIG_FORMAT = "seattle-node-config-v1"
#: The original node manager's port: what researchers try when a donor gives only a host name.
DEFAULT_PORT = 1224
#: Loopback unless the donor says otherwise: exposing a node to the network is a deliberate choice.
DEFAULT_HOST = "127.0.0.1"


@dataclass(frozen=True)
class NodeConfig:
    """What `node.json` holds: where the node listens, which local IPs its vessels may bind, the overlay
    nodes it joins through (`HOST:PORT` texts; none: this node starts a new overlay), and for the pool
    (docs/pool.md) the researcher key this donation earns credit for ("" for none) and the country its offer
    names (ISO 3166 alpha-2, or "")."""

    host: str
    port: int
    local_ips: tuple[str, ...] = ()
    bootstrap: tuple[str, ...] = ()
    beneficiary: str = ""
    country: str = ""

    def __post_init__(self) -> None:
        _check_ip("host", self.host)
        if type(self.port) is not int or not 0 <= self.port <= 65535:
            raise BadNodeConfig(f"port must be an integer from 0 to 65535, not {self.port!r}")
        for ip in self.local_ips:
            _check_ip("local IP", ip)
        for address in self.bootstrap:
            try:
                split_ip_port(address)
            except ValueError as exc:
                raise BadNodeConfig(f"the bootstrap node {address!r:.80} is not usable: {exc}") from None
        if not isinstance(self.beneficiary, str) or (self.beneficiary and not _is_key(self.beneficiary)):
            raise BadNodeConfig(f"the pool beneficiary {self.beneficiary!r:.80} is not a key (ed25519:...)")
        if not isinstance(self.country, str) or not re.fullmatch(r"(?:[A-Z]{2})?", self.country):
            raise BadNodeConfig(f"the country {self.country!r:.20} is not a two-letter ISO 3166 code")

    def to_json(self) -> str:
        return json.dumps({"format": CONFIG_FORMAT, "host": self.host, "port": self.port,
                           "local_ips": list(self.local_ips), "bootstrap": list(self.bootstrap),
                           "beneficiary": self.beneficiary, "country": self.country},
                          indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, path: Path) -> NodeConfig:
        """The configuration in `text`, read from `path` (named in every BadNodeConfig)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadNodeConfig(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != CONFIG_FORMAT:
            raise BadNodeConfig(f"{path} is not a node configuration (expected \"format\": \"{CONFIG_FORMAT}\")")
        unknown = sorted(set(data) - {"format", "host", "port", "local_ips", "bootstrap", "beneficiary", "country"})
        if unknown:
            raise BadNodeConfig(f"{path} has unknown settings: {', '.join(unknown)}")
        local_ips = data.get("local_ips", [])
        if not isinstance(local_ips, list):
            raise BadNodeConfig(f"{path}: local_ips must be a list of IP addresses")
        bootstrap = data.get("bootstrap", [])
        if not isinstance(bootstrap, list):
            raise BadNodeConfig(f"{path}: bootstrap must be a list of HOST:PORT texts")
        # Unchecked JSON values: __post_init__ checks them and says what is wrong.
        host: Any = data.get("host")
        port: Any = data.get("port")
        beneficiary: Any = data.get("beneficiary", "")
        country: Any = data.get("country", "")
        try:
            return cls(host, port, tuple(local_ips), tuple(bootstrap), beneficiary, country)
        except BadNodeConfig as exc:
            raise BadNodeConfig(f"{path}: {exc.detail}") from None


def _is_key(text: str) -> bool:
    try:
        PublicKey.from_text(text)
    except SeattleError:
        return False
    return True


def _check_ip(what: str, value: object) -> None:
    if not isinstance(value, str):
        raise BadNodeConfig(f"the {what} must be an IP address written as text, not {value!r}")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise BadNodeConfig(f"the {what} {value!r} is not an IP address (for example 127.0.0.1)") from None
