"""What it takes to start a vessel, in one value that crosses from the host to the zygote as msgpack."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seattle.resources import Resources

#: The language layer is ours (the checker + scrubbed builtins); the rest are OS layers (seattle.vessel.oslayer).
LANGUAGE_LAYER = "language"

#: The program dialects ("platforms", as the original node manager called them). Ours is Python 3; the
#: original's two are its Python 2 subset with the V2 or the V1 API names, translated before the check
#: (seattle.vessel.child.dialect). Both original platforms get the same translation and the same API (all V2
#: and V1 names); the platform is what the program was written for, kept so the log and the status say it.
PYTHON3 = "python3"
REPY_V2 = "repyV2"
REPY_V1 = "repyV1"
PLATFORMS = (PYTHON3, REPY_V2, REPY_V1)
ORIGINAL_PLATFORMS = frozenset({REPY_V2, REPY_V1})


def platform_named(name: str) -> str | None:
    """The platform `name` stands for, matched without regard to case as the original did; None if unknown."""
    folded = name.lower()
    return next((platform for platform in PLATFORMS if platform.lower() == folded), None)


@dataclass(frozen=True)
class VesselSpec:
    vessel_dir: Path
    #: The program's file name inside `vessel_dir`.
    program: str
    resources: Resources
    args: tuple[str, ...] = ()
    #: The layers to apply. The launcher fills in "everything the host supports" when the caller gives None.
    layers: frozenset[str] = field(default_factory=frozenset)
    #: Local IPs the vessel may bind; the first is what getmyip() returns. Empty: the broker's default.
    local_ips: tuple[str, ...] = ()
    #: When the host asked for the start (time.monotonic(), which every process on the host shares): the
    #: vessel's clock, getruntime(), counts from here.
    requested_at: float = 0.0
    #: The program's dialect: one of PLATFORMS.
    platform: str = PYTHON3

    def to_wire(self) -> dict[str, Any]:
        return {
            "vessel_dir": str(self.vessel_dir),
            "program": self.program,
            "resources": self.resources.to_dict(),
            "args": list(self.args),
            "layers": sorted(self.layers),
            "local_ips": list(self.local_ips),
            "requested_at": self.requested_at,
            "platform": self.platform,
        }

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> VesselSpec:
        return cls(
            vessel_dir=Path(wire["vessel_dir"]),
            program=wire["program"],
            resources=Resources.from_dict(wire["resources"]),
            args=tuple(wire["args"]),
            layers=frozenset(wire["layers"]),
            local_ips=tuple(wire["local_ips"]),
            requested_at=float(wire["requested_at"]),
            platform=_known_platform(wire["platform"]),
        )


def _known_platform(name: object) -> str:
    """A platform read off the wire: one of PLATFORMS exactly, or ValueError."""
    if name not in PLATFORMS:
        raise ValueError(f"unknown platform {name!r}")
    return str(name)
