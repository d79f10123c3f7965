"""User-facing errors: every message a person sees from the `seattle` command is defined here.

Library code raises these with the facts; the CLI prints `str(error)` and exits with `exit_code`. Keeping the
wording in one module keeps it consistent and lets tests match on the class rather than on prose.
"""

from __future__ import annotations

from pathlib import Path


class SeattleError(Exception):
    """A problem the user can act on. `str()` is the whole message."""

    exit_code = 2


class ProgramNotFound(SeattleError):
    def __init__(self, path: str) -> None:
        super().__init__(f"program file {path!r} does not exist or is not a file")


class BadResourceFile(SeattleError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"resource file rejected: {detail}")


class ConfinementUnavailable(SeattleError):
    def __init__(self, details: str) -> None:
        super().__init__(
            "this host offers neither seccomp nor Landlock, so untrusted code cannot be confined "
            f"({details}); run `seattle vessel doctor` for details, or pass --allow-unconfined to run anyway"
        )


class UnknownLayer(SeattleError):
    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        super().__init__(f"unknown sandbox layer {name!r}; the layers are: {', '.join(known)}")


class VesselStartFailed(SeattleError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"the vessel could not be started: {reason}")


class NodeNotFound(SeattleError):
    def __init__(self, node_dir: object, config_file: str) -> None:
        super().__init__(f"{node_dir} is not a node directory (it has no {config_file}); "
                         "create one with `seattle node init --dir DIR`")


class NodeExists(SeattleError):
    def __init__(self, node_dir: object, detail: str = "") -> None:
        extra = f" ({detail})" if detail else ""
        super().__init__(f"{node_dir} already holds a node{extra}; refusing to replace its key and vessels")


class BadNodeConfig(SeattleError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"node configuration rejected: {detail}")
        self.detail = detail


class NodeStartFailed(SeattleError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"the node manager could not start: {reason}")


class NoOwnerGiven(SeattleError):
    def __init__(self, choices: list[str]) -> None:
        listed = ", ".join(choices) if choices else "none yet; create one with `seattle keygen NAME`"
        super().__init__(f"say who owns the node's first vessel with --owner IDENTITY (identities: {listed})")


class BadNodeAddress(SeattleError):
    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"node address {text!r} rejected: {reason}; write it as HOST:PORT, e.g. 127.0.0.1:1224")


class UnknownCall(SeattleError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown call {name!r}; the calls are: {', '.join(known)}")


class BadCallArguments(SeattleError):
    def __init__(self, call: str, usage: str, reason: str) -> None:
        super().__init__(f"{call}: {reason}; usage: {usage}")


class NodeUnreachable(SeattleError):
    exit_code = 1

    def __init__(self, reason: str) -> None:
        super().__init__(reason)


class CallRefused(SeattleError):
    """The node answered with an error: exit 1 (not 2) so scripts can tell it from a usage mistake."""

    exit_code = 1

    def __init__(self, call: str, code: str, message: str) -> None:
        super().__init__(f"{call} refused by the node: {code}: {message}")
        self.code = code


class OutputNotWritten(SeattleError):
    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"cannot write the result to {path}: {reason}")


class SignedCallNeedsIdentity(SeattleError):
    def __init__(self, call: str) -> None:
        super().__init__(f"{call} must be signed: pass --as IDENTITY (an identity made with `seattle keygen`)")


# Identities: keys, names, passphrases (seattle.keys).


class BadKeyName(SeattleError):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name!r} cannot be used as a key name: {reason}")


class BadPublicKey(SeattleError):
    def __init__(self, text: str, reason: str) -> None:
        shown = text if len(text) <= 80 else text[:77] + "..."
        super().__init__(
            f"{shown!r} is not a public key: {reason} (expected ed25519: and 43 base64url characters)"
        )


class IdentityNotFound(SeattleError):
    def __init__(self, name: str, directory: Path, known: list[str]) -> None:
        have = f"the identities there are: {', '.join(known)}" if known else "it holds no identities yet"
        super().__init__(f"no identity named {name!r} in {directory} ({have})")


class IdentityExists(SeattleError):
    def __init__(self, name: str, path: Path) -> None:
        super().__init__(
            f"an identity named {name!r} already exists ({path}); choose another name, or move that file "
            "away first if you really mean to replace it (vessels owned by the old key stay owned by it)"
        )


class KeyFileTooOpen(SeattleError):
    def __init__(self, path: Path, mode: int) -> None:
        super().__init__(
            f"refusing to use private key file {path}: its mode {mode:04o} lets other users read it; "
            f"make it private with `chmod 600 {path}` (and consider the key exposed if others had access)"
        )


class CorruptKeyFile(SeattleError):
    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(
            f"key file {path} is damaged or not a seattle key file: {detail}; restore it from your backup"
        )


class PassphraseRequired(SeattleError):
    def __init__(self, name: str) -> None:
        super().__init__(f"the private key of identity {name!r} is protected by a passphrase; give it")


class PassphraseNotExpected(SeattleError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"the private key of identity {name!r} is not protected by a passphrase, but one was given; "
            "load it without a passphrase"
        )


class WrongPassphrase(SeattleError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"wrong passphrase for identity {name!r} (or its key file is damaged): the private key could "
            "not be decrypted"
        )


class BadPassphrase(SeattleError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"passphrase rejected: {reason}")


class UnknownName(SeattleError):
    def __init__(self, name: str, names_file: Path, known: list[str]) -> None:
        have = f"known names: {', '.join(known)}" if known else "no names are defined yet"
        super().__init__(
            f"no key is named {name!r} ({have}); add a line `{name} ed25519:...` to {names_file}, "
            "or give the public key itself"
        )


class NameTaken(SeattleError):
    def __init__(self, name: str, existing: str) -> None:
        super().__init__(
            f"the name {name!r} already stands for another key ({existing}); remove it first or choose "
            "another name"
        )


class BadNamesFile(SeattleError):
    def __init__(self, path: Path, line: int, detail: str) -> None:
        super().__init__(
            f"names file {path}, line {line}: {detail}; each line must read `name ed25519:<key>`"
        )


# Finding vessels through the overlay (seattle.experiment.browse).


class NoBootstrapNode(SeattleError):
    def __init__(self, bootstrap_file: Path) -> None:
        super().__init__(
            "no overlay node to start from: pass --bootstrap HOST:PORT (any running node manager), set "
            f"SEATTLE_BOOTSTRAP=HOST:PORT[,HOST:PORT...], or write one HOST:PORT per line into {bootstrap_file}"
        )


class BadBootstrapNode(SeattleError):
    def __init__(self, text: str, where: str, reason: str) -> None:
        super().__init__(
            f"bootstrap node {text!r:.80} (from {where}) rejected: {reason}; write it as HOST:PORT with an IP "
            "address, e.g. 10.0.0.5:1224 or [2001:db8::5]:1224"
        )


class OverlayUnreachable(SeattleError):
    exit_code = 1

    def __init__(self, tried: list[str], reason: str) -> None:
        super().__init__(
            f"no bootstrap node answered ({', '.join(tried)}): {reason}; check that a node manager runs there "
            "and that UDP to its port is not blocked, or give another with --bootstrap HOST:PORT"
        )


# Planner profiles, donations and the donor's node commands (seattle.planner, seattle.donor).


class BadProfile(SeattleError):
    def __init__(self, source: object, detail: str) -> None:
        super().__init__(f"installer profile {source} rejected: {detail}")
        self.detail = detail


class BadDonationPercent(SeattleError):
    def __init__(self, percent: object) -> None:
        super().__init__(f"the donation must be a whole percent from 1 to 100 of this machine, not {percent!r}")


class DonationTooSmall(SeattleError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"the donation is too small for the profile's vessels: {detail}; donate a larger "
                         "percent (--percent) or ask the planner for a profile with fewer vessels")


class BadPortPool(SeattleError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"vessel ports rejected: {detail}")


class NodeNotRunning(SeattleError):
    exit_code = 1

    def __init__(self, node_dir: object, detail: str = "") -> None:
        extra = f" ({detail})" if detail else ""
        super().__init__(f"the node in {node_dir} is not running{extra}; start it with "
                         f"`seattle node start --dir {node_dir}`")


class NodeAlreadyRunning(SeattleError):
    exit_code = 1

    def __init__(self, node_dir: object) -> None:
        super().__init__(f"the node in {node_dir} is already running; see `seattle node status --dir {node_dir}`")


class NodeControlFailed(SeattleError):
    exit_code = 1

    def __init__(self, node_dir: object, detail: str) -> None:
        super().__init__(f"the node in {node_dir}: {detail}; its log is {node_dir}/nodemanager.log")


class NoManifest(SeattleError):
    def __init__(self, node_dir: object) -> None:
        super().__init__(f"{node_dir} has no seattle manifest (manifest.json), so seattle cannot tell which "
                         "files it created there; nothing was removed")


class UntrustedPlanner(SeattleError):
    """A profile whose signer the donor has not pinned (`--planner`) or confirmed: a node takes its vessels'
    owners from the profile, so accepting any signer would hand the donation to whoever wrote the file."""

    def __init__(self, fingerprint: str, key_text: str, pinned: str | None = None) -> None:
        if pinned is not None:
            super().__init__(f"the profile is signed by planner {fingerprint} ({key_text}), not by the planner "
                             f"you pinned ({pinned}); nothing was created")
        else:
            super().__init__(f"the profile is signed by planner {fingerprint} ({key_text}); a node accepts a "
                             "profile only from a planner you trust: check that fingerprint with your planner, "
                             f"then pin it with --planner {fingerprint} (or run on a terminal to confirm it)")


class BadPlannerPin(SeattleError):
    def __init__(self, text: str) -> None:
        super().__init__(f"--planner {text!r:.80} is neither a 16-character key fingerprint, an ed25519: key nor "
                         "a name from your names file")


class UnsafeUnitValue(SeattleError):
    def __init__(self, value: str, character: str) -> None:
        super().__init__(f"cannot write a systemd unit for {value!r:.200}: it holds the control character "
                         f"{character!r}, which a unit file cannot carry safely; use a node directory without it")


class UnsafeManifest(SeattleError):
    def __init__(self, node_dir: object, path: str) -> None:
        super().__init__(f"the manifest of {node_dir} names {path!r:.200} outside the node directory, which is "
                         "neither this node's systemd unit nor its installer's directories: it has been tampered "
                         "with, so nothing was removed")


class UnsafeNodeDirectory(SeattleError):
    def __init__(self, node_dir: object, detail: str) -> None:
        super().__init__(f"refusing the node directory {node_dir}: {detail}")


class InstallerBuildFailed(SeattleError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"the installer could not be built: {detail}")


class TestbedStartFailed(SeattleError):
    __test__ = False  # not a pytest test class, whatever its name says
    exit_code = 1

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"the local testbed could not start {what}: {reason}")


class DemoFailed(SeattleError):
    exit_code = 1

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"the demo failed while {step}: {reason}; run it again with --keep to look at the "
                         "node directories and their nodemanager.log files")
        self.step = step
        self.reason = reason


# The researcher's commands: targets, groups, session, state files (seattle.experiment).


class UnknownTarget(SeattleError):
    def __init__(self, text: str, groups: list[str], numbered: int = 0) -> None:
        vessels = f"%1..%{numbered}" if numbered else "none yet; find some with `seattle browse` or `seattle contact`"
        super().__init__(f"no target {text!r}; a target is %N (vessels: {vessels}), a group ({', '.join(groups)}) "
                         "or HOST:PORT:VESSEL")


class BadTarget(SeattleError):
    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"target {text!r} rejected: {reason}")


class BadGroupName(SeattleError):
    def __init__(self, name: str) -> None:
        super().__init__(f"{name!r} cannot name a group: use a letter, then up to 63 letters, digits, '_', '.' "
                         "or '-'")


class NoTargets(SeattleError):
    def __init__(self, target: str) -> None:
        super().__init__(f"the target {target!r} holds no vessels; find some with `seattle browse` or "
                         "`seattle contact HOST:PORT`, or choose another with --on")


class NoIdentityChosen(SeattleError):
    def __init__(self, known: list[str]) -> None:
        listed = ", ".join(known) if known else "none yet; create one with `seattle genkeys NAME`"
        super().__init__(f"say which identity to act as: --as IDENTITY, or `seattle as IDENTITY` once "
                         f"(identities: {listed})")


class BadSessionFile(SeattleError):
    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"the session file {path} is damaged ({detail}); move it away to start a fresh "
                         "session (your vessels are not affected)")


class BadSetting(SeattleError):
    def __init__(self, name: str, value: str, reason: str) -> None:
        super().__init__(f"{name} {value!r} rejected: {reason}")


class ContactFailed(SeattleError):
    exit_code = 1

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"cannot add the vessels of {address}: {reason}")


class LocalFileError(SeattleError):
    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"local file {path}: {reason}")


class BadStateFile(SeattleError):
    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"cannot load the state file {path}: {detail}")


class StateFilePassphrase(SeattleError):
    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"state file {path}: {detail}")


class NoPlannerGiven(SeattleError):
    def __init__(self, choices: list[str]) -> None:
        listed = ", ".join(choices) if choices else "none yet; create one with `seattle keygen NAME`"
        super().__init__(f"say which identity signs the profile with --as IDENTITY (identities: {listed})")


# Pinned node keys ($SEATTLE_HOME/known_nodes, seattle.nodemgr.known_nodes).


class BadKnownNodesFile(SeattleError):
    exit_code = 1

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"the known-nodes file {path} cannot be used: {reason}; fix or delete it (every node "
                         "named by address is then pinned again on its next contact)")


class KnownNodesFull(SeattleError):
    exit_code = 1

    def __init__(self, path: Path, limit: int) -> None:
        super().__init__(f"the known-nodes file {path} already pins {limit:,} nodes, the most it holds; remove "
                         "nodes you no longer use with `seattle known-nodes forget HOST:PORT`")


class UnknownKnownNode(SeattleError):
    exit_code = 1

    def __init__(self, address: str, path: Path) -> None:
        super().__init__(f"{address} is not pinned in {path}; `seattle known-nodes list` shows what is")


# The pool (seattle.experiment.pool).


class BadFilter(SeattleError):
    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"filter {text!r} rejected: {reason}. Write CLAUSE[,CLAUSE...], a clause being FIELD OP "
                         "VALUE: country=DE|FR, reachability=public, free>=2, uptime>=1d, size.cpu>=0.02 "
                         "(see docs/pool.md)")


class BadDuration(SeattleError):
    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"duration {text!r} rejected: {reason}; write seconds, or a number with s, m, h or d "
                         "(e.g. 90m, 4h, 7d)")


class NoOffers(SeattleError):
    exit_code = 1

    def __init__(self, where: str, seen: int) -> None:
        if not seen:
            super().__init__("pool empty: no node offers pool vessels (no offer found in the overlay)")
        else:
            super().__init__(f"no pool offer matches {where!r}: {seen} offers with free vessels were found, none "
                             "of them matches; loosen --where")


class NoFreeSlots(SeattleError):
    exit_code = 1

    def __init__(self, used: int, quota: int) -> None:
        super().__init__(f"quota {used}/{quota}: every slot of your key holds a lease; release some "
                         "(`seattle release`) or wait for leases to end")


class NotLeased(SeattleError):
    def __init__(self, target: str) -> None:
        super().__init__(f"target {target!r} holds no vessel acquired from the pool (`seattle acquire N` "
                         "acquires some)")
