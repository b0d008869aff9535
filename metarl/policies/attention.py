"""Attention policies for RL² (issue 20): SNAIL (Mishra et al. 2018, "A Simple Neural Attentive
Meta-Learner") and a small causal Transformer, beside the GRU.

Both see what the GRU sees at each step of a trial, (observation, previous action, previous
reward, previous done), but where the GRU squeezes the trial so far into a fixed hidden vector,
these attend over every earlier step of it. They follow the GRU's calling convention, so the
sampler, `unroll` and the deployment loop run them unchanged:

- one step: inputs `[B, ·]` and the `hidden` cache of the steps so far; out come the step's
  distribution parameters and the cache with this step appended;
- a sequence: inputs `[T, B, ·]` from the empty cache (`initial_hidden`), all steps in one
  causal pass (training's unroll); out come `[T, B, ...]` parameters and the cache after step T.

The cache holds, per layer, what later steps read: keys and values for attention, the layer's
input history for SNAIL's dilated causal convolutions. A step therefore costs one new row per
layer plus its attention read, not a pass over the whole prefix, and the two paths compute the
same function (tests/policies/test_attention.py holds them equal and checks that no output
depends on a later step).

`hidden` is a tuple of tensors: the position t `[B]`, then each layer's buffers (attention's
keys and values with spare room, a dense block's ring of its last `dilation` inputs); a step
writes into them in place, so appending costs O(1), not a copy of the trial.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from metarl.policies.distributions import CategoricalActions, DiagGaussian

Cache = tuple[Tensor, ...]


class TrialInputs(nn.Module):
    """The step's inputs as one vector, (obs, previous action (one-hot if discrete), previous
    reward, previous done), and the action head's distribution, as `GRUPolicy` has them."""

    def __init__(self, obs_dim: int, action_space: gym.spaces.Space) -> None:
        """The input layout for `obs_dim` observations and `action_space`'s actions."""
        super().__init__()
        if isinstance(action_space, gym.spaces.Discrete):
            self.num_actions = self.action_dim = int(action_space.n)
            self.action_dist: Any = CategoricalActions()
        else:
            self.num_actions, self.action_dim = 0, int(action_space.shape[0])
            self.action_dist = DiagGaussian()
        self.width = obs_dim + self.action_dim + 2

    def forward(self, obs: Tensor, prev_action: Tensor, reward: Tensor, done: Tensor) -> Tensor:
        """`[..., width]`."""
        if self.num_actions:
            prev_action = F.one_hot(prev_action.long(), self.num_actions).to(obs.dtype)
        return torch.cat([obs, prev_action, reward[..., None], done[..., None]], dim=-1)


def _positions(start: int, length: int, width: int, device: torch.device) -> Tensor:
    """Sinusoidal position codes `[length, width]` for steps start.. (Vaswani et al. 2017): no
    maximum trial length, unlike learned positions."""
    position = torch.arange(start, start + length, device=device, dtype=torch.float32)[:, None]
    rates = torch.exp(
        torch.arange(0, width, 2, device=device, dtype=torch.float32) * (-math.log(1e4) / width)
    )
    codes = torch.zeros(length, width, device=device)
    codes[:, 0::2] = torch.sin(position * rates)
    codes[:, 1::2] = torch.cos(position * rates)[:, : width // 2]
    return codes


def _split_heads(x: Tensor, heads: int) -> Tensor:
    """`[B, t, H·d]` → `[B, H, t, d]`."""
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)


def _attend(query: Tensor, keys: Tensor, values: Tensor, heads: int, causal: bool) -> Tensor:
    """Scaled dot-product attention of `query` `[B, q, ·]` over `keys`/`values` `[B, t, ·]`
    (causal: query i sees keys ≤ i), heads merged back: `[B, q, value width]`. Written out
    rather than `F.scaled_dot_product_attention`, whose CPU kernel has no second derivative,
    which TRPO's Fisher-vector products take."""
    query, keys, values = (_split_heads(x, heads) for x in (query, keys, values))
    scores = query @ keys.transpose(-1, -2) / math.sqrt(query.shape[-1])
    if causal:
        later = torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device).triu(1)
        scores = scores.masked_fill(later, float("-inf"))
    read = torch.softmax(scores, -1) @ values
    return read.transpose(1, 2).flatten(-2)


def _grown(buffer: Tensor, length: int) -> Tensor:
    """`buffer` `[B, capacity, ·]` with room for `length` rows: itself, or a copy of twice the
    capacity (amortized O(1) appends, where a `cat` per step would copy the trial each step)."""
    if length <= buffer.shape[1]:
        return buffer
    grown = buffer.new_zeros(buffer.shape[0], max(2 * buffer.shape[1], length), buffer.shape[2])
    grown[:, : buffer.shape[1]] = buffer
    return grown


class _CausalAttention(nn.Module):
    """Multi-head causal self-attention; its cache is its keys and values (buffers with spare
    room, their first t rows filled)."""

    cache_size = 2

    def __init__(self, width: int, key_size: int, value_size: int, heads: int) -> None:
        super().__init__()
        if key_size % heads or value_size % heads:
            raise ValueError(f"key and value sizes must divide by the {heads} heads")
        self.heads = heads
        self.query = nn.Linear(width, key_size)
        self.key = nn.Linear(width, key_size)
        self.value = nn.Linear(width, value_size)

    def run(self, x: Tensor, cache: Cache | None, t: int) -> tuple[Tensor, Cache]:
        """The read `[B, q, value_size]` of x `[B, q, width]`: the whole sequence (cache None,
        q = T) or the step t after the cached ones (q = 1)."""
        if cache is None:
            keys, values = self.key(x), self.value(x)
            read = _attend(self.query(x), keys, values, self.heads, causal=True)
            return read, (keys.detach(), values.detach())
        keys, values = (_grown(buffer, t + 1) for buffer in cache)
        keys[:, t] = self.key(x[:, 0])
        values[:, t] = self.value(x[:, 0])
        read = _attend(self.query(x), keys[:, : t + 1], values[:, : t + 1], self.heads, False)
        return read, (keys, values)

    def empty(self, batch: int, device: torch.device) -> Cache:
        """The cache before the first step."""
        return (
            torch.zeros(batch, 0, self.key.out_features, device=device),
            torch.zeros(batch, 0, self.value.out_features, device=device),
        )


class _TransformerBlock(nn.Module):
    """A pre-norm Transformer block: x + attention(LN x), then + MLP(LN ·)."""

    cache_size = 2

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attention = _CausalAttention(width, width, width, heads)
        self.out = nn.Linear(width, width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )

    def run(self, x: Tensor, cache: Cache | None, t: int) -> tuple[Tensor, Cache]:
        read, cache = self.attention.run(self.norm1(x), cache, t)
        x = x + self.out(read)
        return x + self.mlp(self.norm2(x)), cache

    def empty(self, batch: int, device: torch.device) -> Cache:
        return self.attention.empty(batch, device)


class _AttentionBlock(nn.Module):
    """SNAIL's attention block: single-head causal attention, its read concatenated to x."""

    cache_size = 2

    def __init__(self, width: int, key_size: int, value_size: int) -> None:
        super().__init__()
        self.attention = _CausalAttention(width, key_size, value_size, heads=1)
        self.out_width = width + value_size

    def run(self, x: Tensor, cache: Cache | None, t: int) -> tuple[Tensor, Cache]:
        read, cache = self.attention.run(x, cache, t)
        return torch.cat([x, read], -1), cache

    def empty(self, batch: int, device: torch.device) -> Cache:
        return self.attention.empty(batch, device)


class _DenseBlock(nn.Module):
    """SNAIL's dense block: a causal convolution of kernel 2 and `dilation`, gated (tanh ×
    sigmoid) into `filters` channels concatenated to x. Its cache is a ring of its last
    `dilation` inputs: slot t mod dilation holds step t − dilation's (zeros before step 0)."""

    cache_size = 1

    def __init__(self, width: int, dilation: int, filters: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.now = nn.Linear(width, 2 * filters)  # the kernel's tap on step t
        self.back = nn.Linear(width, 2 * filters, bias=False)  # its tap on step t - dilation
        self.out_width = width + filters

    def _gated(self, x: Tensor, earlier: Tensor) -> Tensor:
        f, g = (self.now(x) + self.back(earlier)).chunk(2, -1)
        return torch.cat([x, torch.tanh(f) * torch.sigmoid(g)], -1)

    def run(self, x: Tensor, cache: Cache | None, t: int) -> tuple[Tensor, Cache]:
        d = self.dilation
        if cache is None:
            length = x.shape[1]
            earlier = F.pad(x, (0, 0, d, 0))[:, :length]  # zeros before step 0
            ring = x.new_zeros(x.shape[0], d, x.shape[2])
            last = torch.arange(max(0, length - d), length, device=x.device)
            ring[:, last % d] = x.detach()[:, last]
            return self._gated(x, earlier), (ring,)
        ring = cache[0]
        earlier = ring[:, t % d : t % d + 1].clone()
        ring[:, t % d] = x[:, 0]
        return self._gated(x, earlier), (ring,)

    def empty(self, batch: int, device: torch.device) -> Cache:
        return (torch.zeros(batch, self.dilation, self.now.in_features, device=device),)


def tc_dilations(trial_length: int) -> list[int]:
    """SNAIL's TC block over sequences of `trial_length`: dense blocks of dilations 1, 2, 4, …,
    ⌈log₂ T⌉ of them, so the last step's receptive field spans the trial."""
    return [2**i for i in range(max(1, math.ceil(math.log2(max(trial_length, 2)))))]


class _AttentionPolicy(nn.Module):
    """What SNAIL and the Transformer share: the trial inputs, an embedding, a stack of cached
    layers (`self.layers`, each with `run(x, cache, t)`, `empty` and `cache_size`), the head,
    and the GRU's calling convention. `hidden[0]` is the position t `[B]` (int64)."""

    recurrent = True
    layers: nn.ModuleList

    def _build_head(self, trunk_width: int, inputs: TrialInputs, final: nn.Module) -> None:
        self.action_dist = inputs.action_dist
        self.num_actions = inputs.num_actions
        self.final = final
        self.head = nn.Linear(trunk_width, inputs.action_dim)
        if not inputs.num_actions:
            self.log_std = nn.Parameter(torch.zeros(inputs.action_dim))

    def _embed(self, x: Tensor, start: int) -> Tensor:
        """The embedded inputs `[B, t, width]` of steps from `start`."""
        return self.embed(x)

    def initial_hidden(self, batch_size: int) -> Cache:
        """The cache at the start of a trial: position 0 and every layer's empty cache."""
        device = self.head.weight.device
        caches = [torch.zeros(batch_size, dtype=torch.int64, device=device)]
        for layer in self.layers:
            caches.extend(layer.empty(batch_size, device))
        return tuple(caches)

    def forward(
        self,
        obs: Tensor,
        prev_action: Tensor,
        prev_reward: Tensor,
        prev_done: Tensor,
        hidden: Cache,
    ) -> tuple[Any, Cache]:
        """One step (inputs `[B, ·]`) after the cached steps, or a sequence (`[T, B, ·]`) from
        the empty cache: distribution parameters and the cache after the last step. A step
        writes into the cache's buffers: the cache passed in is used up."""
        step = obs.dim() == 2
        t = int(hidden[0][0]) if len(hidden[0]) else 0
        if not step and t:
            raise ValueError("a sequence runs from the empty cache (initial_hidden)")
        x = self.inputs(obs, prev_action, prev_reward, prev_done)
        x = self._embed(x[:, None] if step else x.transpose(0, 1), t)  # [B, q, width]
        caches: list[Tensor] = [hidden[0] + x.shape[1]]
        at = 1
        for layer in self.layers:
            x, cache = layer.run(x, hidden[at : at + layer.cache_size] if step else None, t)
            caches.extend(cache)
            at += layer.cache_size
        out = self.head(self.final(x))
        out = out[:, 0] if step else out.transpose(0, 1)
        if self.num_actions:
            return out, tuple(caches)
        return (out, self.log_std.expand_as(out)), tuple(caches)


class TransformerPolicy(_AttentionPolicy):
    """A small causal Transformer over the trial (pre-norm blocks, sinusoidal positions)."""

    def __init__(
        self,
        obs_dim: int,
        action_space: gym.spaces.Space,
        width: int = 64,
        blocks: int = 2,
        heads: int = 4,
    ) -> None:
        """`blocks` Transformer blocks of `width` units and `heads` heads, from a linear
        embedding of the step's inputs to the action head."""
        super().__init__()
        if width % 2:
            raise ValueError(f"the Transformer's width must be even, got {width}")
        self.inputs = TrialInputs(obs_dim, action_space)
        self.width = width
        self.embed = nn.Linear(self.inputs.width, width)
        self.layers = nn.ModuleList(_TransformerBlock(width, heads) for _ in range(blocks))
        self._build_head(width, self.inputs, nn.LayerNorm(width))

    def _embed(self, x: Tensor, start: int) -> Tensor:
        return self.embed(x) + _positions(start, x.shape[1], self.width, x.device)


class SNAILPolicy(_AttentionPolicy):
    """SNAIL's RL network (Mishra et al. 2018 §4, Appendix C): a linear embedding, two TC blocks
    and an attention block, then the action head. The TC blocks' dilations span
    `trial_length` steps; their dense blocks and the attention block concatenate their output
    to their input, so the trunk widens layer by layer."""

    def __init__(
        self,
        obs_dim: int,
        action_space: gym.spaces.Space,
        trial_length: int,
        width: int = 32,
        filters: int = 16,
        key_size: int = 32,
        value_size: int = 32,
    ) -> None:
        """TC blocks of `filters` filters per dense block over `trial_length` steps, the
        attention block's `key_size` / `value_size`, all after an embedding of `width`."""
        super().__init__()
        self.inputs = TrialInputs(obs_dim, action_space)
        self.width = width
        self.embed = nn.Linear(self.inputs.width, width)
        layers: list[nn.Module] = []
        trunk = width
        for _ in range(2):
            for dilation in tc_dilations(trial_length):
                layers.append(_DenseBlock(trunk, dilation, filters))
                trunk = layers[-1].out_width
        layers.append(_AttentionBlock(trunk, key_size, value_size))
        self.layers = nn.ModuleList(layers)
        self._build_head(layers[-1].out_width, self.inputs, nn.Identity())
