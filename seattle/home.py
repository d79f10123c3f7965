"""Where seattle keeps keys and settings for the current user.

Every command resolves paths through `seattle_home()` so that tests, and several users on one machine, can
point `SEATTLE_HOME` at their own directory and never collide.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def seattle_home() -> Path:
    """`$SEATTLE_HOME` if set, else the platform's per-user config directory; created with mode 0700."""
    configured = os.environ.get("SEATTLE_HOME")
    home = Path(configured) if configured else platformdirs.user_config_path("seattle")
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return home
