"""The node directory: every file of one node, named, read and written in this one place.

    node_dir = NodeDir(path)
    node_dir.create()                                # the directory, forced to mode 0700
    node_dir.write_config(NodeConfig("127.0.0.1", 1224))
    node_dir.read_config()                           # NodeNotFound / BadNodeConfig
    node_dir.database_path, node_dir.control_socket_path, ...

A node directory holds (the node manager creates some of these only when it runs):

    node.json                 the configuration (`config.NodeConfig`): where the node listens, its overlay
    node.privatekey, .publickey, names   the node's key pair (`seattle.keys`: the private file is 0600)
    node.db (-wal, -shm, -journal), node.lock   the vessels' state (`database.Store`) and the daemon's flock
    vessels/, logs/           one directory and one log per vessel (`vessels.NodeState`)
    routing.json              the overlay routing table, saved so a restarted node rejoins without help
    donation.json             what the donor gave (written by `seattle.donor`, shown by `seattle node status`)
    manifest.json             what seattle created, inside and outside, for `seattle node uninstall`
    nodemanager.log(.N), node.out   the daemon's rotated log, and the output of a detached `node start`
    control.sock              the daemon's control socket (`control`)

Every file written whole goes through `seattle.atomicfile` (temporary, fsync, rename), so a crash leaves
the old file or the new one. `owns` tells uninstall which entries are seattle's; anything else is the
donor's and is kept. This module knows names and formats only: it opens no database and runs nothing.
"""

from __future__ import annotations

import fnmatch
import json
import os
import stat
from pathlib import Path
from typing import Any

from seattle.atomicfile import write_atomic
from seattle.errors import BadNodeConfig, NodeNotFound, NoManifest, UnsafeNodeDirectory
from seattle.keys import PRIVATE_SUFFIX, PUBLIC_SUFFIX, Identity, load_identity, save_identity
from seattle.nodemgr.config import NodeConfig
from seattle.resources import Resources

MANIFEST_FORMAT = "seattle-manifest-v1"
#: Records (donation, routing table: k contacts per bucket) are small; a bigger file is not one of ours
#: and is not read whole.
_MAX_RECORD = 1024 * 1024
#: A ledger of 4096 pool vessels with their leases (~900 bytes each) and the keys the node refuses.
_MAX_POOL = 8 * 1024 * 1024
_MAX_MANIFEST = 64 * 1024


class NodeDir:
    """One node's directory (module docstring): its paths, and the reads and writes of its records."""

    CONFIG = "node.json"
    #: The node identity's name in `seattle.keys`: its key files are node.privatekey and node.publickey.
    IDENTITY = "node"
    DATABASE = "node.db"
    LOCK = "node.lock"
    VESSELS = "vessels"
    LOGS = "logs"
    ROUTING = "routing.json"
    DONATION = "donation.json"
    MANIFEST = "manifest.json"
    LOG = "nodemanager.log"
    START_LOG = "node.out"
    CONTROL_SOCKET = "control.sock"
    POOL = "pool.ledger"

    #: Every name seattle creates in a node directory (fnmatch patterns), including the temporaries of
    #: `seattle.atomicfile` (`.*.tmp`) and those of older versions (`node.json.tmp`, ...).
    OWNED_FILES: tuple[str, ...] = (
        CONFIG, f"{CONFIG}.tmp", f"{IDENTITY}{PRIVATE_SUFFIX}", f"{IDENTITY}{PUBLIC_SUFFIX}", "names",
        DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm", f"{DATABASE}-journal", LOCK, DONATION,
        f"{DONATION}.tmp", CONTROL_SOCKET, LOG, f"{LOG}.[0-9]*", START_LOG, ROUTING, f"{ROUTING}.tmp",
        ".*.tmp", MANIFEST, POOL,
    )
    #: Directories seattle creates in a node directory; removed whole.
    OWNED_DIRECTORIES: tuple[str, ...] = (VESSELS, LOGS)

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"NodeDir({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    # -- paths ------------------------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    @property
    def private_key_path(self) -> Path:
        return self.path / f"{self.IDENTITY}{PRIVATE_SUFFIX}"

    @property
    def database_path(self) -> Path:
        return self.path / self.DATABASE

    @property
    def lock_path(self) -> Path:
        return self.path / self.LOCK

    @property
    def vessels_path(self) -> Path:
        return self.path / self.VESSELS

    @property
    def logs_path(self) -> Path:
        return self.path / self.LOGS

    @property
    def routing_path(self) -> Path:
        return self.path / self.ROUTING

    @property
    def donation_path(self) -> Path:
        return self.path / self.DONATION

    @property
    def manifest_path(self) -> Path:
        return self.path / self.MANIFEST

    @property
    def log_path(self) -> Path:
        return self.path / self.LOG

    @property
    def start_log_path(self) -> Path:
        return self.path / self.START_LOG

    @property
    def control_socket_path(self) -> Path:
        return self.path / self.CONTROL_SOCKET

    # -- the directory ----------------------------------------------------------------------------------

    def create(self) -> None:
        """Make the directory (and its parents) if missing, and `secure` it, whether it is new or not."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.secure()

    def secure(self) -> None:
        """Leave the directory 0700: it holds the node's private key, its database and its control socket, and
        a directory others can enter or write lets them read the key or plant files and symlinks the node
        manager would then use. A wider mode is tightened; a directory owned by another user is refused
        (UnsafeNodeDirectory), since its owner could loosen it again at any time. Called at `node init` and
        at every start of the node manager."""
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            info = os.fstat(fd)
            if info.st_uid != os.geteuid():
                raise UnsafeNodeDirectory(self.path, f"it belongs to user {info.st_uid}, not to you "
                                                     f"({os.geteuid()}), and its owner could read the node's key")
            if stat.S_IMODE(info.st_mode) != 0o700:
                os.fchmod(fd, 0o700)
        finally:
            os.close(fd)

    def holds_node(self) -> bool:
        """True if a node was created here (its configuration or its key is present)."""
        return self.config_path.exists() or self.private_key_path.exists()

    def owns(self, entry: Path) -> bool:
        """True if `entry` (directly in this directory) is one seattle creates: uninstall may remove it."""
        if entry.name in self.OWNED_DIRECTORIES:
            return entry.is_dir() and not entry.is_symlink()
        return (any(fnmatch.fnmatchcase(entry.name, pattern) for pattern in self.OWNED_FILES)
                and not entry.is_dir())

    # -- the node's key ---------------------------------------------------------------------------------

    def save_identity(self, identity: Identity) -> None:
        save_identity(identity, self.path)

    def load_identity(self) -> Identity:
        """The node's key pair (refused if the private file is readable by others)."""
        return load_identity(self.IDENTITY, self.path)

    # -- records ----------------------------------------------------------------------------------------

    def read_config(self) -> NodeConfig:
        """The node's `node.json`; NodeNotFound if the directory holds no node, BadNodeConfig if damaged."""
        path = self.config_path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NodeNotFound(self.path, self.CONFIG) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise BadNodeConfig(f"{path} cannot be read: {exc}") from None
        return NodeConfig.from_json(text, path)

    def write_config(self, config: NodeConfig) -> None:
        write_atomic(self.config_path, config.to_json().encode("utf-8"), mode=0o644)

    def write_donation(self, record: dict[str, Any]) -> None:
        """Store the donation record (`seattle.donor.donation.Donation.to_dict`)."""
        write_atomic(self.donation_path, _json_bytes(record), mode=0o644)

    def read_donation(self) -> dict[str, Any] | None:
        """{"percent", "donated": Resources} of the donation record, or None for a node made without a
        profile (or a damaged record)."""
        try:
            with open(self.donation_path, "rb") as f:
                data = json.loads(f.read(_MAX_RECORD))
            donated = Resources.from_dict(data["donated"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return {"percent": data.get("percent"), "donated": donated}

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_atomic(self.manifest_path, _json_bytes(manifest), mode=0o644)

    def read_manifest(self) -> dict[str, Any]:
        """The manifest: {"format", "created_dir": bool, "outside": [absolute paths]}; NoManifest if it is
        missing or not one."""
        try:
            with open(self.manifest_path, "rb") as f:
                data = json.loads(f.read(_MAX_MANIFEST))
        except (OSError, ValueError):
            raise NoManifest(self.path) from None
        if (not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT
                or not isinstance(data.get("created_dir"), bool) or not isinstance(data.get("outside"), list)
                or not all(isinstance(p, str) and os.path.isabs(p) for p in data["outside"])):
            raise NoManifest(self.path)
        return data

    def read_routing(self) -> bytes | None:
        """The saved routing table's bytes, None if there is none; ValueError if it is too large to be ours."""
        try:
            with self.routing_path.open("rb") as file:
                data = file.read(_MAX_RECORD + 1)
        except FileNotFoundError:
            return None
        if len(data) > _MAX_RECORD:
            raise ValueError(f"over {_MAX_RECORD} bytes")
        return data

    def write_routing(self, data: bytes) -> None:
        """Store the routing table (0600: it says whom this node talks to)."""
        write_atomic(self.routing_path, data, mode=0o600)

    @property
    def pool_path(self) -> Path:
        return self.path / self.POOL

    def read_pool(self) -> bytes | None:
        """The pool's lease ledger (`seattle.pool.ledger`), None before the first lease."""
        try:
            with self.pool_path.open("rb") as file:
                data = file.read(_MAX_POOL + 1)
        except FileNotFoundError:
            return None
        if len(data) > _MAX_POOL:
            raise ValueError(f"{self.pool_path} is over {_MAX_POOL} bytes")
        return data

    def write_pool(self, data: bytes) -> None:
        """Store the lease ledger atomically and durably: the node answers an acquire only after this."""
        write_atomic(self.pool_path, data, mode=0o600)


def _json_bytes(value: dict[str, Any]) -> bytes:
    return (json.dumps(value, indent=2) + "\n").encode("utf-8")
