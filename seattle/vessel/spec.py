"""What it takes to start a vessel, in one value that crosses from the host to the zygote as msgpack."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seattle.resources import Resources

#: The language layer is ours (the checker + scrubbed builtins); the rest are OS layers (seattle.vessel.oslayer).
LANGUAGE_LAYER = "language"


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

    def to_wire(self) -> dict[str, Any]:
        return {
            "vessel_dir": str(self.vessel_dir),
            "program": self.program,
            "resources": self.resources.to_dict(),
            "args": list(self.args),
            "layers": sorted(self.layers),
            "local_ips": list(self.local_ips),
            "requested_at": self.requested_at,
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
        )
