"""Installer profiles: the planner's signed description of how a donation is divided.

    write_profile(path, [VesselPlan(60, alice), VesselPlan(40, bob, (carol,))], ["10.0.0.5:1224"], planner)
    profile = read_profile(path)       # size, signature, then every field

A profile is the original's `vesselinfo` (§7.1 of the reference) plus the overlay's bootstrap nodes, signed
so that a donor (and anyone auditing a node) can tell who laid the node out. The file is one signed envelope
(`seattle.envelope`, context `seattle/planner/profile/v1\\0`):

    signature(64) ‖ context ‖ planner key(32) ‖ msgpack {"vessels": [{"percent", "owner", "users"}, ...],
                                                         "bootstrap": ["HOST:PORT", ...],
                                                         "pool": nil | {"percent", "vessel_percent"}}

with keys as 32 raw bytes. Percents are whole numbers from 1 to 100 and total exactly 100 (the original
accepted only multiples of 10; any whole percent works here because the division is exact arithmetic).
The pool's share (docs/pool.md) counts toward the 100: it becomes `percent // vessel_percent` pool vessels
owned by each node's own key, the last one taking the crumbs.
Validation is the same function on both sides, so a profile `make_profile` accepts is one `read_profile`
accepts, and a hand-made file meets the same checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seattle.addresses import split_ip_port
from seattle.atomicfile import write_atomic
from seattle.envelope import EnvelopeRejected, seal, unseal
from seattle.errors import BadPlannerPin, BadProfile, SeattleError, UntrustedPlanner
from seattle.keys import FINGERPRINT_LENGTH, KEY_TEXT_PREFIX, Identity, PublicKey, check_name, resolve

CONTEXT = b"seattle/planner/profile/v1\0"
FIELDS = frozenset({"vessels", "bootstrap", "pool"})
#: The original clearinghouse's pool vessel was "twopercent": here, 2 % of the donation each.
TWOPERCENT = 2
#: A real profile is well under 10 KiB (a vessel is ~40 bytes plus 33 per user).
MAX_PROFILE_BYTES = 64 * 1024
#: Each vessel needs at least one port of the node's pool (100 ports by default) and one offcut.
MAX_VESSELS = 100
MAX_USERS = 64
MAX_BOOTSTRAP = 16


@dataclass(frozen=True)
class VesselPlan:
    """One vessel of the layout: its share of the donation, its owner and its users."""

    percent: int
    owner: PublicKey
    users: tuple[PublicKey, ...] = ()


@dataclass(frozen=True)
class PoolShare:
    """The share of the donation given to the pool, cut into vessels of `vessel_percent` each."""

    percent: int
    vessel_percent: int = TWOPERCENT

    @property
    def count(self) -> int:
        return self.percent // self.vessel_percent


@dataclass(frozen=True)
class Profile:
    """A verified profile: the vessels in order (v1, v2, ...), the bootstrap nodes, who signed it, and the
    pool's share (None: the node shares nothing with the pool)."""

    vessels: tuple[VesselPlan, ...]
    bootstrap: tuple[str, ...]
    planner: PublicKey
    pool: PoolShare | None = None


def check_layout(vessels: Iterable[VesselPlan], bootstrap: Iterable[str], source: object = "<profile>",
                 pool: PoolShare | None = None) -> tuple[tuple[VesselPlan, ...], tuple[str, ...]]:
    """The vessels and bootstrap nodes as tuples, or BadProfile naming the first thing that is wrong."""
    plans = tuple(vessels)
    nodes = tuple(bootstrap)
    if not plans:
        raise BadProfile(source, "it describes no vessels; give at least one (percents totalling 100)")
    if len(plans) > MAX_VESSELS:
        raise BadProfile(source, f"{len(plans)} vessels is more than the limit of {MAX_VESSELS}")
    for number, plan in enumerate(plans, start=1):
        if not isinstance(plan, VesselPlan):
            raise BadProfile(source, f"vessel {number} is a {type(plan).__name__}, not a VesselPlan")
        if type(plan.percent) is not int or not 1 <= plan.percent <= 100:
            raise BadProfile(source, f"vessel {number}: the percent must be a whole number from 1 to 100, "
                                     f"not {plan.percent!r:.40}")
        if not isinstance(plan.owner, PublicKey):
            raise BadProfile(source, f"vessel {number}: the owner must be a public key")
        if not isinstance(plan.users, tuple) or not all(isinstance(u, PublicKey) for u in plan.users):
            raise BadProfile(source, f"vessel {number}: the users must be a tuple of public keys")
        if len(plan.users) > MAX_USERS:
            raise BadProfile(source, f"vessel {number}: {len(plan.users)} users is more than the limit of "
                                     f"{MAX_USERS}")
        if len(set(plan.users)) != len(plan.users):
            raise BadProfile(source, f"vessel {number}: a user is listed twice")
    pooled = 0 if pool is None else _check_pool(pool, len(plans), source)
    total = sum(plan.percent for plan in plans) + pooled
    if total != 100:
        shares = " + ".join([str(plan.percent) for plan in plans] + ([f"{pooled} (pool)"] if pool else []))
        raise BadProfile(source, f"the vessels' percents must total exactly 100, but {shares} = {total}")
    if len(nodes) > MAX_BOOTSTRAP:
        raise BadProfile(source, f"{len(nodes)} bootstrap nodes is more than the limit of {MAX_BOOTSTRAP}")
    for address in nodes:
        try:
            split_ip_port(address)
        except ValueError as exc:
            raise BadProfile(source, f"the bootstrap node {address!r:.80} is not usable: {exc}") from None
    if len(set(nodes)) != len(nodes):
        raise BadProfile(source, "a bootstrap node is listed twice")
    return plans, nodes


def _check_pool(pool: PoolShare, vessels: int, source: object) -> int:
    """The pool's percent, once its share and vessel size are shown to make at least one pool vessel."""
    if not isinstance(pool, PoolShare):
        raise BadProfile(source, f"the pool share is a {type(pool).__name__}, not a PoolShare")
    for name, value in (("pool percent", pool.percent), ("pool vessel size", pool.vessel_percent)):
        if type(value) is not int or not 1 <= value <= 99:
            raise BadProfile(source, f"the {name} must be a whole number from 1 to 99, not {value!r:.40}")
    if pool.vessel_percent > pool.percent:
        raise BadProfile(source, f"a pool vessel of {pool.vessel_percent}% does not fit in a pool of "
                                 f"{pool.percent}%")
    if vessels + pool.count > MAX_VESSELS:
        raise BadProfile(source, f"{vessels} vessels and {pool.count} pool vessels is more than the limit of "
                                 f"{MAX_VESSELS}")
    return pool.percent


def make_profile(vessels: Iterable[VesselPlan], bootstrap: Iterable[str], planner: Identity,
                 pool: PoolShare | None = None) -> bytes:
    """The signed content of a profile file, after the same validation `read_profile` applies."""
    plans, nodes = check_layout(vessels, bootstrap, pool=pool)
    fields = {
        "vessels": [{"percent": plan.percent, "owner": plan.owner.raw, "users": [u.raw for u in plan.users]}
                    for plan in plans],
        "bootstrap": list(nodes),
        "pool": None if pool is None else {"percent": pool.percent, "vessel_percent": pool.vessel_percent},
    }
    content = seal(planner, CONTEXT, fields)
    if len(content) > MAX_PROFILE_BYTES:
        raise BadProfile("<new>", f"it would be {len(content)} bytes, above the limit of {MAX_PROFILE_BYTES}")
    return content


def write_profile(path: Path, vessels: Iterable[VesselPlan], bootstrap: Iterable[str], planner: Identity,
                  pool: PoolShare | None = None) -> Profile:
    """Validate, sign and write a profile to `path` (replacing it atomically); returns what was written."""
    path = Path(path)
    content = make_profile(vessels, bootstrap, planner, pool)
    write_atomic(path, content, mode=0o644)
    return parse_profile(content, path)


def read_profile(path: Path) -> Profile:
    """The verified profile in `path`: BadProfile if it is unreadable, too big, not signed, or invalid."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            content = f.read(MAX_PROFILE_BYTES + 1)
    except OSError as exc:
        raise BadProfile(path, f"it cannot be read: {exc.strerror or exc}") from None
    return parse_profile(content, path)


def parse_profile(content: bytes, source: object = "<profile>") -> Profile:
    """Verify and decode profile bytes: the size (no work is spent on an oversized input, and a file cut at
    the limit could not verify anyway), then the signature, and only then every field."""
    if len(content) > MAX_PROFILE_BYTES:
        raise BadProfile(source, f"it is larger than the limit of {MAX_PROFILE_BYTES} bytes")
    try:
        signer, fields = unseal(content, CONTEXT, FIELDS, "profile", "seattle installer profile")
    except EnvelopeRejected as exc:
        raise BadProfile(source, exc.message) from None
    pool = _pool(fields["pool"], source)
    plans, nodes = check_layout(_plans(fields["vessels"], source), _texts(fields["bootstrap"], source), source,
                                pool)
    return Profile(plans, nodes, PublicKey(signer), pool)


def _pool(value: Any, source: object) -> PoolShare | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"percent", "vessel_percent"}:
        raise BadProfile(source, "pool must be nil or a map of percent and vessel_percent")
    return PoolShare(value["percent"], value["vessel_percent"])


def _plans(value: Any, source: object) -> Sequence[VesselPlan]:
    if not isinstance(value, list) or len(value) > MAX_VESSELS:
        raise BadProfile(source, f"vessels must be a list of at most {MAX_VESSELS} maps")
    plans = []
    for number, entry in enumerate(value, start=1):
        if not isinstance(entry, dict) or set(entry) != {"percent", "owner", "users"}:
            raise BadProfile(source, f"vessel {number} must be a map of percent, owner and users")
        users = entry["users"]
        if not isinstance(users, list) or len(users) > MAX_USERS:
            raise BadProfile(source, f"vessel {number}: users must be a list of at most {MAX_USERS} keys")
        plans.append(VesselPlan(entry["percent"], _key(entry["owner"], number, source),
                                tuple(_key(user, number, source) for user in users)))
    return plans


def _key(value: Any, number: int, source: object) -> PublicKey:
    if not isinstance(value, bytes) or len(value) != 32:
        raise BadProfile(source, f"vessel {number}: a key must be 32 bytes")
    return PublicKey(value)


def _texts(value: Any, source: object) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_BOOTSTRAP:
        raise BadProfile(source, f"bootstrap must be a list of at most {MAX_BOOTSTRAP} HOST:PORT texts")
    if not all(isinstance(item, str) for item in value):
        raise BadProfile(source, "bootstrap must list HOST:PORT texts")
    return value


def planner_key(pin: str, directory: Path | None = None) -> PublicKey | str:
    """What `--planner` names: an `ed25519:` key or a name from the names file (a PublicKey), or a fingerprint
    (16 base32 characters, returned lowercased); BadPlannerPin if it is none of these."""
    text = pin.strip()
    if text.startswith(KEY_TEXT_PREFIX):
        return PublicKey.from_text(text)
    if len(text) == FINGERPRINT_LENGTH and all(c in "abcdefghijklmnopqrstuvwxyz234567" for c in text.lower()):
        return text.lower()
    try:
        return resolve(check_name(text), directory)
    except SeattleError:
        raise BadPlannerPin(pin) from None


def check_planner(profile: Profile, pin: str) -> None:
    """Accept `profile` only if its signer is the planner `pin` names (`planner_key`): UntrustedPlanner
    otherwise. The donor pins the planner they were told about out of band, so a profile signed by anyone else
    (a forged installer, a profile swapped on the way) is refused before it lays out a single vessel."""
    wanted = planner_key(pin)
    signer = profile.planner
    trusted = signer.fingerprint() == wanted if isinstance(wanted, str) else signer == wanted
    if not trusted:
        raise UntrustedPlanner(signer.fingerprint(), signer.to_text(), pin)
