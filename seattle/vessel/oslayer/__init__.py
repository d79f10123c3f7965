"""The OS layer of a vessel: kernel walls applied inside the sandboxed child before user code runs.

`detect()` tells what the host supports (and why not), `LayerPlan` says what one vessel gets, and
`apply_layers()` applies it in the child. See docs/sandbox-layers.md for what each layer stops.
"""

from seattle.vessel.oslayer.apply import SandboxSetupError, apply_layers
from seattle.vessel.oslayer.detect import HostSupport, detect, probe
from seattle.vessel.oslayer.paths import default_readonly_paths
from seattle.vessel.oslayer.plan import LAYER_NAMES, LayerPlan

__all__ = [
    "LAYER_NAMES",
    "HostSupport",
    "LayerPlan",
    "SandboxSetupError",
    "apply_layers",
    "default_readonly_paths",
    "detect",
    "probe",
]
