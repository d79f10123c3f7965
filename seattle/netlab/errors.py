"""Every message a person sees from the namespace testbed: what is missing or what failed, and what to do."""

from __future__ import annotations

from collections.abc import Sequence

from seattle.errors import SeattleError


class NetlabError(SeattleError):
    """The namespace testbed could not be built or used."""


class NeedsRoot(NetlabError):
    def __init__(self) -> None:
        super().__init__(
            "the namespace testbed needs root: creating network namespaces, links and iptables rules needs "
            "CAP_NET_ADMIN and CAP_SYS_ADMIN (run it as root, e.g. in CI)"
        )


class ToolMissing(NetlabError):
    def __init__(self, tool: str, package: str) -> None:
        super().__init__(
            f"the namespace testbed needs the `{tool}` command, which is not installed "
            f"(Debian/Ubuntu: apt-get install {package})"
        )


class BadLabName(NetlabError):
    def __init__(self, what: str, name: str, rule: str) -> None:
        super().__init__(f"bad {what} {name!r} for the namespace testbed: {rule}")


class LabBusy(NetlabError):
    def __init__(self, prefix: str, lock: str, waited: float) -> None:
        super().__init__(
            f"another namespace testbed with the prefix {prefix!r} is still running (it holds {lock}; waited "
            f"{waited:.0f} s); stop it or use another prefix"
        )


class LabClosed(NetlabError):
    def __init__(self) -> None:
        super().__init__("this namespace testbed is closed: its namespaces are gone")


class LabFull(NetlabError):
    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"the namespace testbed has room for at most {limit} {what}")


class LabCommandFailed(NetlabError):
    def __init__(self, argv: Sequence[str], returncode: int | None, stderr: str) -> None:
        status = "timed out" if returncode is None else f"exited with status {returncode}"
        detail = stderr.strip().splitlines()[-1] if stderr.strip() else "no error output"
        super().__init__(f"`{' '.join(argv)}` {status}: {detail}")
