"""What every few-shot learner offers the trainer besides its algorithm (issue 19): it counts
labelled examples, asks to be saved every `SAVE_SECONDS`, holds nothing to release, and saves
its state as named parts (networks, optimizers, the task problem), one layout for all."""

from __future__ import annotations

from typing import Any, Protocol

from metarl.agents.parts.config import ClosesOnExit
from metarl.fewshot.parts.config import SAVE_SECONDS


class Saveable(Protocol):
    """A part with a state: a module, an optimizer, the task problem."""

    def state_dict(self) -> Any:
        """The part's state."""

    def load_state_dict(self, state: Any) -> None:
        """Restore what `state_dict` returned."""


class FewShotLearner(ClosesOnExit):
    """The mixin of the few-shot learners (as `OwnsSampler` is of the RL agents): the trainer's
    attributes, `close`, and `state_dict` / `load_state_dict` over `saved_parts`."""

    experience = "examples"
    """The trainer counts labelled examples, not env steps."""
    save_seconds = SAVE_SECONDS
    """Iterations take milliseconds: the trainer saves once per this many seconds."""

    def saved_parts(self) -> dict[str, Saveable]:
        """The learner's parts with a state, by checkpoint key."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Every part's state, by its key: what a resumed run needs to continue exactly."""
        return {name: part.state_dict() for name, part in self.saved_parts().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        for name, part in self.saved_parts().items():
            part.load_state_dict(state[name])

    def close(self) -> None:
        """Nothing to release (no sampler threads)."""
