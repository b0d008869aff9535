"""Seeded network initialization without global state.

`nn.Module`s draw their initial weights from torch's global generator and take no generator of
their own. `InitRNG` gives each agent a private stream for those draws: inside `with init:` the
global generator is swapped for the agent's stream (seeded with the agent's seed), and restored
on exit, so building an agent never changes what the rest of the program draws, and two agents
built in either order get the same weights.
"""

from __future__ import annotations

from types import TracebackType

import torch


class InitRNG:
    """A seeded stream for module initialization; use as `with init: net = Net(...)`. Streams
    continue across `with` blocks, so networks built in turn get the weights they would get
    after `torch.manual_seed(seed)` (the weights of earlier metarl versions)."""

    def __init__(self, seed: int) -> None:
        """The stream of `torch.manual_seed(seed)`."""
        self._state = torch.Generator().manual_seed(seed).get_state()
        self._saved: torch.Tensor | None = None

    def __enter__(self) -> InitRNG:
        """Swap the global generator's state for this stream's."""
        if self._saved is not None:
            raise RuntimeError("InitRNG blocks do not nest")
        self._saved = torch.get_rng_state()
        torch.set_rng_state(self._state)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Keep this stream's position and give the global generator its state back."""
        self._state = torch.get_rng_state()
        torch.set_rng_state(self._saved)
        self._saved = None
