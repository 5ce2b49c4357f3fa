"""Where dtoee-sim caches what it builds: the ns3_glue C++ library, trained models, profiles.

One definition, used by ``ns3_glue.build`` and ``inference.staged``. It lives in a module of
its own, outside every layer, because ``ns3_glue`` imports nothing from the rest of the
project and ``inference`` never imports ``ns3_glue`` (see docs/design.md, "Layers").
"""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable that moves the cache.
CACHE_ENV = "DTOEE_CACHE"


def cache_root() -> Path:
    """``$DTOEE_CACHE`` if set and non-empty, else ``~/.cache/dtoee``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "dtoee"
