"""The networks of the few-shot learners (issue 19), used functionally: adapted parameters are
plain dicts passed through `torch.func.functional_call`, and a batch of tasks runs as one
vmapped call, as the RL policies do (docs/architecture.md §3, "Functional policies").

Batch norm keeps no running statistics (`track_running_stats=False`): it normalizes with the
statistics of the examples in hand, the transductive setting of MAML's and Reptile's official
code, and the only one in which a vmapped call over tasks keeps the tasks independent.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn
from torch.func import functional_call, vmap

from metarl.policies.functional import Params


def mlp_backbone(input_size: int, hidden_sizes: Sequence[int]) -> tuple[nn.Module, int]:
    """ReLU layers of `hidden_sizes` on flattened inputs, and the width of its output."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = input_size
    for size in hidden_sizes:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    return nn.Sequential(*layers), width


def conv_backbone(input_shape: Sequence[int], channels: int, blocks: int) -> tuple[nn.Module, int]:
    """Vinyals et al. 2016's embedding: `blocks` × (3×3 conv of `channels` filters, batch norm,
    ReLU, 2×2 max-pool), flattened, and the width of its output. A block pools only while the
    image is larger than 2×2: Omniglot's 28×28 ends at 1×1 as in the paper, and the 8×8 digits
    keep a 2×2 map (pooled to 1×1, ProtoNets on the digits lost 10 points of accuracy)."""
    in_channels, height, width = input_shape
    layers: list[nn.Module] = []
    for _ in range(blocks):
        layers += [
            nn.Conv2d(in_channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels, track_running_stats=False),
            nn.ReLU(),
        ]
        if min(height, width) > 2:
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        in_channels = channels
    layers.append(nn.Flatten())
    return nn.Sequential(*layers), channels * height * width


def backbone(
    kind: str,
    input_shape: Sequence[int],
    hidden_sizes: Sequence[int],
    channels: int,
    blocks: int,
) -> tuple[nn.Module, int]:
    """The backbone `kind` ('mlp', 'conv' or 'auto': conv for `(C, H, W)` inputs, else mlp) and
    the width of its output."""
    if kind == "auto":
        kind = "conv" if len(input_shape) == 3 else "mlp"
    if kind == "conv":
        if len(input_shape) != 3:
            raise ValueError(
                f"config key 'backbone' 'conv' needs image inputs (C, H, W), got {input_shape}"
            )
        return conv_backbone(input_shape, channels, blocks)
    size = 1
    for dim in input_shape:
        size *= dim
    return mlp_backbone(size, hidden_sizes)


def batched_call(network: nn.Module, stacked: Params, inputs: Tensor) -> Tensor:
    """`network` under task i's parameters on task i's inputs, for every task at once:
    `stacked` `[n, ...]` per name, `inputs` `[n, m, ...]` → `[n, m, outputs]`."""
    return vmap(lambda params, x: functional_call(network, params, (x,)))(stacked, inputs)
