"""An env that is slow to start in a spawned sampler worker, for the Ctrl-C start-up test.

Importing this module in any process but `$METARL_SLOW_ENV_PARENT` (a worker imports it while it
boots, to unpickle the `SlowEnv` factory) marks that process's pid in `$METARL_SLOW_ENV_DIR` and
then sleeps, as a worker importing torch and building a heavy env would: a Ctrl-C then lands in
the workers' start-up. Importable without torch, like failing_env.
"""

import os
import time
from pathlib import Path

from failing_env import WrappedNavigation

_MARKER_DIR = os.environ.get("METARL_SLOW_ENV_DIR")
if _MARKER_DIR and os.environ.get("METARL_SLOW_ENV_PARENT") != str(os.getpid()):
    (Path(_MARKER_DIR) / str(os.getpid())).touch()
    time.sleep(120)


class SlowEnv(WrappedNavigation):
    """A Navigation2D on the generic path whose module is slow to import in a worker."""
