"""What the caller asks of the OS layers for one vessel: limits, paths and which layers to apply."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from seattle.vessel.oslayer.paths import default_readonly_paths

LAYER_NAMES: tuple[str, ...] = ("rlimits", "namespaces", "landlock", "seccomp")


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"LayerPlan.{name} must be a positive int, got {value!r}")


@dataclass(frozen=True)
class LayerPlan:
    """The OS-level confinement of one vessel's child process.

    memory_bytes: the memory allotment; RLIMIT_AS is this plus the slack `rlimits` documents.
    max_open_files: RLIMIT_NOFILE, the OS backstop behind the API's file and socket counts, so the
        caller passes the allotment plus the descriptors the runtime itself holds.
    max_file_bytes: RLIMIT_FSIZE, the largest single file the child may write.
    layers: which of LAYER_NAMES to apply; one the host lacks is skipped (see `apply_layers`).
    readonly_paths: what the interpreter may still read under Landlock; vessel_dir is read-write.
    """

    vessel_dir: Path
    memory_bytes: int
    max_open_files: int
    max_file_bytes: int
    layers: frozenset[str]
    readonly_paths: tuple[Path, ...] = field(default_factory=default_readonly_paths)

    def __post_init__(self) -> None:
        if not isinstance(self.vessel_dir, Path) or not self.vessel_dir.is_absolute():
            raise ValueError(f"LayerPlan.vessel_dir must be an absolute Path, got {self.vessel_dir!r}")
        if not self.vessel_dir.is_dir():
            raise ValueError(f"LayerPlan.vessel_dir {self.vessel_dir} is not an existing directory")
        for name in ("memory_bytes", "max_open_files", "max_file_bytes"):
            _positive_int(name, getattr(self, name))
        if not isinstance(self.layers, frozenset):
            raise ValueError(f"LayerPlan.layers must be a frozenset of layer names, got {self.layers!r}")
        unknown = sorted(str(name) for name in self.layers - set(LAYER_NAMES))
        if unknown:
            raise ValueError(f"LayerPlan.layers has unknown layer(s) {unknown}; known: {list(LAYER_NAMES)}")
        vessel = self.vessel_dir.resolve()
        for path in self.readonly_paths:
            if not isinstance(path, Path) or not path.is_absolute():
                raise ValueError(f"LayerPlan.readonly_paths must hold absolute Paths, got {path!r}")
            if path.resolve().is_relative_to(vessel):
                raise ValueError(
                    f"LayerPlan.vessel_dir {self.vessel_dir} contains the read-only path {path}: "
                    "the vessel could then rewrite what the interpreter runs"
                )
