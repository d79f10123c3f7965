"""The researcher's session: current identity, default target, numbered vessels, groups and settings.

It lives in `seattle_home()/session.json` so one-shot commands see what an earlier `seattle browse` or
`seattle contact` found, exactly as one seash shell would. The shell keeps one `Session` in memory and saves
it after each command. Writes are atomic (temporary file, fsync, rename) and mode 0600: the file names the
vessels you control, which is nobody else's business.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seattle.atomicfile import write_atomic
from seattle.errors import BadSessionFile, BadSetting, SeattleError
from seattle.experiment.targets import ALL, Targets
from seattle.home import seattle_home
from seattle.keys import check_name

SESSION_FILE = "session.json"
FORMAT = "seattle-session-v1"
DEFAULT_TIMEOUT = 30.0
DEFAULT_UPLOAD_RATE = 5120
MAX_SESSION_BYTES = 64 * 1024 * 1024
MAX_TIMEOUT = 24 * 3600.0


@dataclass
class Session:
    """Everything a command needs to know about what the researcher chose before."""

    identity: str | None = None
    target: str = ALL
    timeout: float = DEFAULT_TIMEOUT
    upload_rate: int = DEFAULT_UPLOAD_RATE
    targets: Targets = field(default_factory=Targets)

    def set_identity(self, name: str | None) -> None:
        self.identity = None if name is None else check_name(name)

    def set_timeout(self, seconds: float) -> None:
        if not 0 < seconds <= MAX_TIMEOUT:
            raise BadSetting("timeout", str(seconds), f"give seconds above 0 and at most {MAX_TIMEOUT:.0f}")
        self.timeout = float(seconds)

    def set_upload_rate(self, rate: int) -> None:
        if rate < 1:
            raise BadSetting("uploadrate", str(rate), "give bytes per second, at least 1")
        self.upload_rate = int(rate)

    def upload_timeout(self, size: int) -> float:
        """seash's rule: an upload may take the longer of the timeout and size / upload rate."""
        return max(self.timeout, size / self.upload_rate)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "identity": self.identity, "target": self.target, "timeout": self.timeout,
                "upload_rate": self.upload_rate, **self.targets.to_json()}

    @classmethod
    def from_json(cls, data: object) -> Session:
        """Raises ValueError, KeyError or TypeError on anything malformed (callers name the file)."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"it is not a {FORMAT} file")
        session = cls(target=str(data["target"]), targets=Targets.from_json(data))
        session.set_identity(data["identity"])
        session.set_timeout(float(data["timeout"]))
        session.set_upload_rate(int(data["upload_rate"]))
        return session


def session_path() -> Path:
    return seattle_home() / SESSION_FILE


def load_session(path: Path | None = None) -> Session:
    """The saved session, or a fresh one if none was saved; BadSessionFile if the file is damaged."""
    path = path or session_path()
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_SESSION_BYTES + 1)
    except FileNotFoundError:
        return Session()
    except OSError as exc:
        raise BadSessionFile(path, str(exc)) from None
    if len(raw) > MAX_SESSION_BYTES:
        raise BadSessionFile(path, f"it is larger than {MAX_SESSION_BYTES} bytes")
    try:
        return Session.from_json(json.loads(raw))
    except (ValueError, KeyError, TypeError, SeattleError) as exc:
        raise BadSessionFile(path, str(exc) or type(exc).__name__) from None


def save_session(session: Session, path: Path | None = None) -> None:
    """Write the session atomically with mode 0600."""
    write_atomic(path or session_path(), json.dumps(session.to_json(), indent=1).encode("utf-8"), mode=0o600)
