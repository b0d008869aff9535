"""Policies as functions of their parameters: adapted parameters are plain `dict[str, Tensor]`
used through `torch.func.functional_call`, never written into the module (docs/architecture.md,
"Functional policies")."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torch.func import functional_call

Params = dict[str, Tensor]
"""Parameter name → tensor, as `nn.Module.named_parameters` names them."""


def parameters(policy: nn.Module) -> Params:
    """The policy's own parameters as a name → tensor dict (the tensors, not copies)."""
    return dict(policy.named_parameters())


def call(policy: nn.Module, params: Params | None, *inputs: Tensor) -> Any:
    """`policy(*inputs)` with `params` in place of its own (when given)."""
    if params is None:
        return policy(*inputs)
    return functional_call(policy, params, inputs)
