"""What the API functions inside a vessel process share: the allotment, the accountant, the broker.

One `VesselContext` exists per vessel process. Each API module exposes `exports(ctx) -> dict` of the
names it adds to the program's globals; `seattle.vessel.child.runtime` merges them. Keeping the shared state
in one plain object (rather than module globals) lets tests build a context around a temporary
directory and call the API directly, in-process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from seattle.resources import Resources
    from seattle.vessel.child.accounting import Accountant
    from seattle.vessel.child.broker_client import BrokerClient


@dataclass
class VesselContext:
    resources: Resources
    accountant: Accountant
    #: The vessel's own directory; every file name is resolved inside it and nowhere else.
    vessel_dir: Path
    #: The channel to the supervisor that performs network calls and reports CPU, memory and disk use.
    broker: BrokerClient
    #: Writes bytes to the vessel log (the supervisor's pipe). Callers charge `lograte` first.
    write_log: Callable[[bytes], None]
    #: Ends the whole vessel process at once with this exit code; never returns.
    exit: Callable[[int], NoReturn]
    #: The arguments after the program name (`callargs`).
    args: list[str] = field(default_factory=list)
    start_time: float = field(default_factory=time.monotonic)
    #: The last traceback text per thread ident, for getlasterror().
    last_errors: dict[int, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
