"""The channel's refusals and every message about them a person may read.

Each is a `seattle.refusal.Refused`: `code` is stable (peers, tests and logs match on it), `message` says what
happened and what to do. The class tells the phase: `HandshakeFailed` before a channel exists, `ChannelBroken`
once it does (a `trio.BrokenResourceError` too, so code that treats a broken stream as "the peer went away"
keeps working), `KeyMismatch` and `VersionMismatch` for the two refusals a person has to act on.
"""

from __future__ import annotations

import trio

from seattle.keys import PublicKey
from seattle.refusal import Refused

#: Codes carried by `ChannelError.code`.
DECRYPT_FAILED = "decrypt_failed"  # a message's authentication tag did not verify: tampered, replayed, reordered
MESSAGE_TOO_LARGE = "message_too_large"  # a length over the limit, refused before any crypto
BAD_MESSAGE = "bad_message"  # a handshake message of the wrong length for its step
BAD_KEY = "bad_key"  # a Diffie-Hellman with a low-order point (an all-zero shared secret)
NONCE_EXHAUSTED = "nonce_exhausted"  # 2**64 - 1 messages in one direction: never in practice, refused anyway
BAD_IDENTITY = "bad_identity"  # a handshake payload that does not prove an Ed25519 identity
HANDSHAKE_TIMEOUT = "handshake_timeout"
CONNECTION_CLOSED = "connection_closed"  # the peer closed during the handshake or inside a message
KEY_MISMATCH = "key_mismatch"
VERSION_MISMATCH = "version_mismatch"
UPGRADE_REQUIRED = "upgrade_required"  # the code of the old-framing error frame a node sends an old client

#: What `VersionMismatch.theirs` holds when the peer speaks the plaintext protocol of before the channel.
PLAINTEXT_NODE = "plaintext node"
PLAINTEXT_CLIENT = "plaintext client"


class ChannelError(Refused):
    """Base of every channel refusal: `code` for programs, `message` for people."""


class HandshakeFailed(ChannelError):
    """The handshake did not complete: tampering, a timeout, a bad identity payload, an oversize message, or a
    peer that hung up. The transport has been closed."""


class ChannelBroken(ChannelError, trio.BrokenResourceError):
    """An established channel received a message it must refuse (tampered, truncated, replayed, reordered) or
    was cut off inside a message. The transport has been closed; every later call raises
    trio.BrokenResourceError."""


class KeyMismatch(ChannelError):
    """The node proved an Ed25519 identity other than the one the client expected."""

    def __init__(self, expected: PublicKey, actual: PublicKey) -> None:
        super().__init__(
            KEY_MISMATCH,
            f"the node answered with key {actual.fingerprint()} ({actual}), not the expected "
            f"{expected.fingerprint()} ({expected}); someone may be intercepting the connection, or the node has "
            "a new key: check its fingerprint with its donor before trusting the new key",
        )
        self.expected = expected
        self.actual = actual


class VersionMismatch(ChannelError):
    """The peer speaks another version of the channel, or the plaintext protocol of before it (`theirs` is
    then PLAINTEXT_NODE or PLAINTEXT_CLIENT)."""

    def __init__(self, ours: int, theirs: int | str) -> None:
        if theirs == PLAINTEXT_NODE:
            detail = ("this node speaks the plaintext protocol of an older seattle, which this client no longer "
                      "uses because it lets anyone on the path read and forge every call; ask the node's donor "
                      "to upgrade seattle")
        elif theirs == PLAINTEXT_CLIENT:
            detail = "the client speaks the plaintext protocol of an older seattle; it was told to upgrade"
        elif isinstance(theirs, int) and theirs > ours:
            detail = (f"the peer speaks channel version {theirs} and this seattle speaks {ours}; upgrade seattle "
                      "(pip install --upgrade seattle)")
        else:
            detail = (f"the peer speaks channel version {theirs} and this seattle speaks {ours}; the peer must "
                      "upgrade seattle")
        super().__init__(VERSION_MISMATCH, detail)
        self.ours = ours
        self.theirs = theirs


#: The message an old plaintext client shows its user when a node that speaks the channel refuses it.
UPGRADE_CLIENT = (
    "this node manager only accepts encrypted connections (channel version {version}), which your seattle does not "
    "speak yet: upgrade seattle (pip install --upgrade seattle) and try again"
)
