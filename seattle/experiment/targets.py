"""Vessel targets: the numbered vessels a researcher knows (`%1..%N`), named groups, and target expressions.

A `Targets` value is plain data (so the session can save it as JSON): every vessel found by browse or contact
gets the next number, which never changes while the vessel is known (seash's `%N`), and a group is a sorted
list of numbers. `%all` is not stored: it is every known vessel. A vessel that split or joined away is
forgotten, and with it its number in every group.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from seattle.addresses import parse_address
from seattle.errors import BadGroupName, BadTarget, UnknownTarget

ALL = "%all"
MAX_VESSELS = 100_000
_GROUP_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
#: What a vessel name may look like (names from nodes end up in local file names: no "/" ever).
VESSEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True, order=True)
class VesselRef:
    """Where a vessel lives: its node's address and its name there."""

    host: str
    port: int
    vessel: str

    @property
    def address(self) -> str:
        """The node's `HOST:PORT` (IPv6 in brackets)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.address}:{self.vessel}"

    @classmethod
    def parse(cls, text: str) -> VesselRef:
        """`HOST:PORT:VESSEL` → VesselRef; BadTarget naming the part that is wrong."""
        address, colon, vessel = text.rpartition(":")
        if not colon or not VESSEL_NAME.fullmatch(vessel):
            raise BadTarget(text, "write a vessel as HOST:PORT:VESSEL, e.g. 127.0.0.1:1224:v1")
        host, port = parse_address(address)
        return cls(host, port, vessel)


@dataclass
class KnownVessel:
    """A numbered vessel and what was last learnt about it (GetVessels' entry, the node's key, and the relays
    its node is reached through when it cannot be dialled: ("HOST:PORT", relay key text) each); `lease` is the
    pool lease that made it ours, if it was acquired (`seattle.experiment.pool.StoredLease.to_json`)."""

    number: int
    ref: VesselRef
    node_key: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    relays: tuple[tuple[str, str], ...] = ()
    lease: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data = {"number": self.number, "host": self.ref.host, "port": self.ref.port, "vessel": self.ref.vessel,
                "node_key": self.node_key, "info": dict(self.info), "relays": [list(r) for r in self.relays]}
        return data if self.lease is None else {**data, "lease": dict(self.lease)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KnownVessel:
        number, port = data["number"], data["port"]
        lease = data.get("lease")
        if not isinstance(number, int) or not isinstance(port, int) or not isinstance(data["info"], dict) \
                or not isinstance(lease, dict | None):
            raise ValueError("number and port must be integers, info and lease maps")
        relays = tuple((str(address), str(key)) for address, key in data.get("relays", []))
        return cls(number, VesselRef(str(data["host"]), port, str(data["vessel"])), data.get("node_key"),
                   data["info"], relays, lease)


@dataclass
class Targets:
    """The numbered vessels and the groups over them."""

    vessels: dict[int, KnownVessel] = field(default_factory=dict)
    groups: dict[str, list[int]] = field(default_factory=dict)
    next_number: int = 1

    # -- vessels -------------------------------------------------------------------------------------------

    def add_vessel(self, ref: VesselRef, node_key: str | None = None, info: dict[str, Any] | None = None,
                   relays: tuple[tuple[str, str], ...] | None = None) -> int:
        """The vessel's number, numbering it if it is new; its node key, info and relays are refreshed."""
        for known in self.vessels.values():
            if known.ref == ref:
                known.node_key = node_key or known.node_key
                known.info = info if info is not None else known.info
                known.relays = relays if relays is not None else known.relays
                return known.number
        if len(self.vessels) >= MAX_VESSELS:
            raise BadTarget(str(ref), f"the session already holds {MAX_VESSELS} vessels; remove some first")
        number = self.next_number
        self.next_number += 1
        self.vessels[number] = KnownVessel(number, ref, node_key, dict(info or {}), relays or ())
        return number

    def forget(self, numbers: Iterable[int]) -> None:
        """Drop vessels that no longer exist (split or joined away) from the list and from every group."""
        gone = set(numbers)
        for number in gone:
            self.vessels.pop(number, None)
        for name, members in self.groups.items():
            self.groups[name] = [number for number in members if number not in gone]

    # -- groups --------------------------------------------------------------------------------------------

    def set_group(self, name: str, numbers: Iterable[int]) -> None:
        self.groups[check_group_name(name)] = sorted(set(numbers) & set(self.vessels))

    def add_to_group(self, name: str, numbers: Iterable[int]) -> None:
        self.set_group(name, [*self.groups.get(name, []), *numbers])

    def remove_from_group(self, name: str, numbers: Iterable[int]) -> None:
        if name not in self.groups:
            raise UnknownTarget(name, self.group_names())
        gone = set(numbers)
        self.groups[name] = [number for number in self.groups[name] if number not in gone]

    def move_to_group(self, name: str, numbers: Iterable[int]) -> None:
        """Take the vessels out of every other group and put them in `name` (seash's `move`)."""
        moving = set(numbers)
        for other in list(self.groups):
            if other != name:
                self.remove_from_group(other, moving)
        self.add_to_group(name, moving)

    def delete_group(self, name: str) -> None:
        if self.groups.pop(name, None) is None:
            raise UnknownTarget(name, self.group_names())

    def group_names(self) -> list[str]:
        return [ALL, *sorted(self.groups)]

    # -- target expressions --------------------------------------------------------------------------------

    def resolve(self, expression: str) -> list[int]:
        """`%all`, `%N`, a group name, or `HOST:PORT:VESSEL` (numbered if new) → the vessel numbers, sorted."""
        text = expression.strip()
        if text == ALL:
            return sorted(self.vessels)
        if text.startswith("%"):
            if not text[1:].isdigit() or int(text[1:]) not in self.vessels:
                raise UnknownTarget(text, self.group_names(), numbered=len(self.vessels))
            return [int(text[1:])]
        if text in self.groups:
            return list(self.groups[text])
        if ":" in text:
            return [self.add_vessel(VesselRef.parse(text))]
        raise UnknownTarget(text, self.group_names(), numbered=len(self.vessels))

    def refs(self, numbers: Iterable[int]) -> list[tuple[int, VesselRef]]:
        return [(number, self.vessels[number].ref) for number in numbers if number in self.vessels]

    # -- persistence ---------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"vessels": [known.to_json() for known in self.vessels.values()],
                "groups": {name: list(members) for name, members in self.groups.items()},
                "next_number": self.next_number}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Targets:
        vessels = {known.number: known for known in map(KnownVessel.from_json, data["vessels"])}
        groups = {check_group_name(name): [int(n) for n in members if int(n) in vessels]
                  for name, members in dict(data["groups"]).items()}
        next_number = max([int(data["next_number"]), *(n + 1 for n in vessels)])
        return cls(vessels, groups, next_number)


def check_group_name(name: str) -> str:
    """A group name is a word that cannot be mistaken for `%N` or an address."""
    if not _GROUP_NAME.fullmatch(name):
        raise BadGroupName(name)
    return name
