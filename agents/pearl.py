"""PEARL (Rakelly et al. 2019, "Efficient Off-Policy Meta-Reinforcement Learning via
Probabilistic Context Variables").

A context encoder turns transitions c = (s, a, r, s') of a task into a posterior q(z|c), the
normalized product of one Gaussian factor per transition; a SAC actor-critic conditioned on z
learns off-policy from per-task replay buffers. The encoder is trained by the critic's loss plus
a KL penalty towards the prior N(0, I) (the information bottleneck, §4.1).

One iteration (Algorithm 1 with the official implementation's collection schedule):
1. (first iteration only) `num_initial_episodes` on every training task with z ~ prior;
2. on `num_tasks_sample` random training tasks (all of them batched together): clear each
   task's encoder buffer, then three collections as oyster's `collect_data`:
   `num_prior_episodes` with z ~ prior into both buffers; `num_posterior_episodes` into both
   buffers; `num_extra_posterior_episodes` into the replay buffer only (so the encoder learns
   from what exploration with the prior gives). Like oyster, each of the two posterior
   collections starts from the prior (`clear_z`): its first episode runs with z ~ prior, and
   after every episode the posterior is inferred again from `context_batch_size` rows of the
   task's encoder buffer (`update_post_train` = 1), so its later episodes run with
   z ~ q(z|encoder buffer);
3. `num_gradient_steps` steps, each on `meta_batch_size` tasks: context from each task's encoder
   buffer, a batch from its replay buffer, z ~ q(z|context) reparameterized; critic + KL update
   the Q-functions and the encoder, the actor learns with z held constant.

SAC is the modern form: twin Q-functions with Polyak-averaged target copies, no separate value
network (the official code's V-network is folded into the target); the entropy weight α is fixed
at `alpha` (the paper's setting: α = 1 with rewards scaled by `reward_scale` = 5) unless
`automatic_entropy` learns it towards the target entropy −dim(A).

Evaluation (`trial_returns`) is the paper's online protocol: on each held-out task, episode 0 runs
with z from the prior, episode i with z from the posterior given episodes 0..i-1. It draws from
streams of its own (a generator for z and a sampler RNG state, both seeded with seed + 10000 and
checkpointed), so measuring `test_return` never changes training (docs/architecture.md §2).

Transitions need s'; the sampler keeps the observation each action was taken on, so a column's
last step has s' only when it terminated (then s' is not needed). The last step of an episode cut
by the horizon is therefore left out of the buffers (1 step in `horizon`; it is still counted in
`env_steps`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from metarl.agents.parts.checks import check_bool, check_float, check_int, check_sizes
from metarl.agents.parts.config import AgentConfig
from metarl.agents.parts.seeding import InitRNG
from metarl.agents.pearl_networks import (
    ContextEncoder,
    LatentPolicy,
    TwinQ,
    actor_loss,
    alpha_loss,
    critic_loss,
    kl_to_standard_normal,
    polyak_update,
    soft_q_target,
)
from metarl.backend.device import adam
from metarl.backend.progress import SILENT, Progress
from metarl.envs.base import Task
from metarl.sampling.episodes import EpisodeOutcomes, Episodes
from metarl.sampling.sampler import VectorSampler
from metarl.sampling.tasks import HELD_OUT_SEED_OFFSET, held_out_tasks, task_source


@dataclass
class PEARLConfig(AgentConfig):
    """PEARL settings. Defaults are the paper's and the official implementation's (oyster,
    HalfCheetahVel setting), with collection counted in episodes of the env's horizon (its
    2000 / 400 / 600 steps of 200-step episodes are 10 / 2 / 3 episodes)."""

    num_train_tasks: int = 100
    """Size of the fixed set of training tasks drawn with `seed` (cheetah-vel: 100), >= 1."""
    meta_batch_size: int = 16
    """Tasks per gradient step (the official `meta_batch`), >= 1."""
    batch_size: int = 256
    """Replay transitions per task per gradient step, >= 1."""
    context_batch_size: int = 100
    """Context transitions per task per gradient step, from its encoder buffer, >= 1."""
    num_initial_episodes: int = 10
    """Episodes per training task with z ~ prior before the first update (2000 steps), >= 1."""
    num_tasks_sample: int = 5
    """Training tasks whose data is refreshed each iteration, in [1, num_train_tasks]."""
    num_prior_episodes: int = 2
    """Per sampled task and iteration: episodes with z ~ prior, into both buffers (400 steps),
    >= 1."""
    num_posterior_episodes: int = 0
    """Per sampled task and iteration: episodes into both buffers, the first with z ~ prior and
    each later one with z ~ the posterior of the encoder buffer (oyster's `collect_data`),
    >= 0."""
    num_extra_posterior_episodes: int = 3
    """Per sampled task and iteration: episodes into the replay buffer only (600 steps), the
    first with z ~ prior and each later one with z ~ the posterior of the encoder buffer,
    >= 0."""
    num_gradient_steps: int = 2000
    """Gradient steps per iteration (the official `num_train_steps_per_itr`), >= 0 (0 only
    collects)."""
    latent_size: int = 5
    """Dimension of z, >= 1."""
    hidden_sizes: Sequence[int] = (300, 300, 300)
    """Hidden layers of the actor and of each Q-function (ReLU): widths >= 1 (empty: linear)."""
    encoder_hidden_sizes: Sequence[int] = (200, 200, 200)
    """Hidden layers of the context encoder (ReLU): widths >= 1 (empty: linear)."""
    use_next_obs_in_context: bool = True
    """Context transitions are (s, a, r, s') (the issue); False drops s' (oyster's default)."""
    learning_rate: float = 3e-4
    """Adam step size of the actor, the critics, the encoder (and α); finite and > 0."""
    reward_scale: float = 5.0
    """Rewards are multiplied by this in the Q target, finite and > 0: with α fixed, 1/scale
    is the temperature."""
    kl_weight: float = 0.1
    """λ of the KL(q(z|c) ‖ N(0, I)) penalty, summed over the meta-batch's tasks; finite and
    >= 0."""
    tau: float = 0.005
    """Polyak rate of the target Q-functions, in (0, 1] (0 would never move the targets)."""
    alpha: float = 1.0
    """Fixed entropy weight α (the initial one with `automatic_entropy`), finite and > 0: it
    is kept as log α."""
    automatic_entropy: bool = False
    """Learn α towards the target entropy −dim(A) instead of keeping it fixed."""
    policy_mean_reg: float = 1e-3
    """Weight of the actor's pre-squash mean² regularizer (official implementation), finite
    and >= 0."""
    policy_std_reg: float = 1e-3
    """Weight of the actor's log-std² regularizer (official implementation), finite and >= 0."""
    replay_buffer_size: int = 1_000_000
    """Transitions kept per task (oldest overwritten), >= 1; memory grows only as data
    arrives."""
    eval_every: int = 1
    """Iterations between `test_return` measurements (NaN in between), >= 0; 0 never
    measures."""
    num_eval_tasks: int = 10
    """Held-out tasks (drawn with seed + 10000) behind `test_return`, >= 1."""
    episodes_per_trial: int = 3
    """Episodes per held-out trial, >= 1, in `test_return` and as `metarl evaluate`'s default:
    episode 0 runs with z from the prior, episode i with the posterior of episodes 0..i-1;
    `test_return` is the last one's return (the official evaluation's final-episode return)."""
    eval_deterministic: bool = True
    """Evaluation takes the policy's mode (tanh of the mean), as the official evaluation."""
    max_envs: int = 100
    """Envs the sampler steps together, >= 1; bigger collections run in chunks."""

    def __post_init__(self) -> None:
        """Check the shared fields, then PEARL's: counts, sizes, rates, switches, and that
        `num_tasks_sample` does not exceed `num_train_tasks`."""
        AgentConfig.__post_init__(self)
        positive = (
            "num_train_tasks meta_batch_size batch_size context_batch_size "
            "num_initial_episodes num_prior_episodes latent_size "
            "replay_buffer_size num_eval_tasks episodes_per_trial max_envs"
        )
        for name in positive.split():
            check_int(name, getattr(self, name))
        nonnegative = (
            "num_posterior_episodes num_extra_posterior_episodes num_gradient_steps eval_every"
        )
        for name in nonnegative.split():
            check_int(name, getattr(self, name), 0)
        check_int(
            "num_tasks_sample",
            self.num_tasks_sample,
            1,
            self.num_train_tasks,
            high_name="num_train_tasks",
        )
        for name in ("hidden_sizes", "encoder_hidden_sizes"):
            check_sizes(name, getattr(self, name))
        for name in ("use_next_obs_in_context", "automatic_entropy", "eval_deterministic"):
            check_bool(name, getattr(self, name))
        for name in ("learning_rate", "reward_scale", "alpha"):
            check_float(name, getattr(self, name), 0, low_open=True)
        for name in ("kl_weight", "policy_mean_reg", "policy_std_reg"):
            check_float(name, getattr(self, name), 0)
        check_float("tau", self.tau, 0, 1, low_open=True)


class TaskBuffers:
    """One FIFO buffer of transitions per task, stored as [tasks, capacity, width] tensors that
    grow (doubling) up to `max_size` as data arrives. A row is (s, a, r, s', terminated).

    The rows live on `device` (the update's); sizes, write positions and the sampled indices
    are the CPU's, so a draw costs no device sync and is the same on every device."""

    def __init__(
        self, num_tasks: int, width: int, max_size: int, device: torch.device | None = None
    ) -> None:
        """`num_tasks` empty buffers of rows `width` wide on `device` (default: the CPU), each
        keeping at most `max_size`."""
        self.max_size, self.width = max_size, width
        self.device = torch.device("cpu") if device is None else device
        self.data = torch.zeros(num_tasks, 0, width, device=self.device)
        self.size = torch.zeros(num_tasks, dtype=torch.long)
        self.next = torch.zeros(num_tasks, dtype=torch.long)  # write position when full

    def clear(self, task: int) -> None:
        """Empty the task's buffer (the storage stays allocated)."""
        self.size[task] = 0
        self.next[task] = 0

    def add(self, task: int, rows: Tensor) -> None:
        """Append rows [n, width] to the task's buffer, overwriting the oldest when full."""
        rows = rows[-self.max_size :]
        n, size = rows.shape[0], int(self.size[task])
        needed = min(size + n, self.max_size)
        if needed > self.data.shape[1]:
            capacity = min(max(needed, 2 * self.data.shape[1]), self.max_size)
            grown = torch.zeros(self.data.shape[0], capacity, self.width, device=self.device)
            grown[:, : self.data.shape[1]] = self.data
            self.data = grown
        positions = (int(self.next[task]) + torch.arange(n)) % self.max_size
        self.data[task, positions.to(self.device)] = rows.to(self.device)
        self.next[task] = (int(self.next[task]) + n) % self.max_size
        self.size[task] = needed

    def sample(self, tasks: Tensor, n: int, generator: torch.Generator) -> Tensor:
        """n rows per task, uniformly with replacement from its buffer: [len(tasks), n, width]."""
        sizes = self.size[tasks]
        if (sizes == 0).any():
            raise RuntimeError("sampling from an empty task buffer")
        index = (torch.rand(len(tasks), n, generator=generator) * sizes[:, None]).long()
        return self.data[tasks[:, None].to(self.device), index.to(self.device)]

    def state_dict(self) -> dict[str, Tensor]:
        """The filled part of the storage (on the CPU, so that any machine reads it), each
        task's size and write position."""
        used = int(self.size.max()) if len(self.size) else 0
        data = self.data[:, :used].to("cpu", copy=True)
        return {"data": data, "size": self.size, "next": self.next}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore what `state_dict` returned (as copies, on this buffer's device)."""
        self.data = state["data"].to(self.device, copy=True)
        self.size, self.next = state["size"].clone(), state["next"].clone()


class PEARL:
    """PEARL on a metarl task env with a Box action space (see the module docstring).

    env: a metarl task env id or short name; env_kwargs go to `gymnasium.make`.
    """

    def __init__(
        self, env: str, config: PEARLConfig | None = None, *, env_kwargs: dict | None = None
    ) -> None:
        """`config` defaults to `PEARLConfig()`. Builds the sampler, the fixed training tasks and
        the held-out ones, the networks (seeded by `config.seed`), their optimizers and the
        per-task buffers."""
        self.config = cfg = config or PEARLConfig()
        env_kwargs = env_kwargs or {}
        self.sampler = cfg.make_sampler(env, cfg.max_envs, env_kwargs)
        space = self.sampler.action_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            self.close()
            raise ValueError(
                f"PEARL's SAC actor needs a continuous (Box) action space; {env} has {space}"
            )
        if not np.allclose(space.low, -space.high):
            self.close()
            raise ValueError(f"PEARL needs a symmetric action box, got {space}")
        try:
            self.task_env = task_source(self.sampler.env_id or env, env_kwargs, cfg.seed)
        except ValueError:
            self.close()
            raise
        self.train_tasks = self.task_env.sample_tasks(cfg.num_train_tasks)
        self.eval_tasks = held_out_tasks(  # the tasks of `test_return`: evaluate's
            self.sampler.env_id or env,
            env_kwargs,
            cfg.seed + HELD_OUT_SEED_OFFSET,
            cfg.num_eval_tasks,
        )

        obs_dim = self.sampler.observation_space.shape[0]
        self.obs_dim, self.action_dim = obs_dim, space.shape[0]
        self.action_scale = torch.as_tensor(space.high, dtype=torch.float32)
        self.context_dim = obs_dim * (2 if cfg.use_next_obs_in_context else 1) + self.action_dim + 1
        self.device = device = cfg.torch_device
        with InitRNG(cfg.seed):  # initialized on the CPU: the same weights on every device
            self.encoder = ContextEncoder(
                self.context_dim, cfg.latent_size, cfg.encoder_hidden_sizes
            )
            self.policy = LatentPolicy(
                obs_dim, cfg.latent_size, self.action_scale, cfg.hidden_sizes
            )
            self.critic = TwinQ(obs_dim, self.action_dim, cfg.latent_size, cfg.hidden_sizes)
        for network in (self.encoder, self.policy, self.critic):
            network.to(device)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.tensor(
            math.log(max(cfg.alpha, 1e-8)), device=device, requires_grad=True
        )
        self.target_entropy = -float(self.action_dim)
        lr = cfg.learning_rate
        self.optimizers = {
            "policy": adam(self.policy.parameters(), lr, device),
            "critic": adam(self.critic.parameters(), lr, device),
            "encoder": adam(self.encoder.parameters(), lr, device),
            "alpha": adam([self.log_alpha], lr, device),
        }
        # A row: s, a (unit box), r (raw), s', terminated.
        width = 2 * obs_dim + self.action_dim + 2
        self.replay = TaskBuffers(cfg.num_train_tasks, width, cfg.replay_buffer_size, device)
        self.encoder_buffer = TaskBuffers(
            cfg.num_train_tasks, width, cfg.replay_buffer_size, device
        )
        self.generator = torch.Generator().manual_seed(cfg.seed)  # z, batches, task choice
        # Evaluation's own streams (z, and the sampler's resets and action noise), so that
        # `test_return` leaves every training RNG where it was.
        eval_seed = cfg.seed + HELD_OUT_SEED_OFFSET
        self.eval_generator = torch.Generator().manual_seed(eval_seed)
        self.eval_sampler_state = VectorSampler.seeded_state(eval_seed)
        self.iteration = 0
        self.progress: Progress = SILENT  # the trainer's nested bar, when it trains this agent

    # ----- data -----------------------------------------------------------------------------

    def transitions(self, episodes: Episodes) -> list[Tensor]:
        """Each column's transitions as rows [n, width] (see `TaskBuffers`), unit-box actions."""
        obs, mask = episodes.observations, episodes.mask.bool()
        actions = episodes.actions / self.action_scale
        next_obs = torch.zeros_like(obs)
        next_obs[:-1] = obs[1:]
        # A step has its s' when the column goes on after it, or needs none when it terminated.
        has_next = torch.zeros_like(mask)
        has_next[:-1] = mask[1:] & ~episodes.dones[:-1]
        keep = mask & (has_next | episodes.terminated)
        rows = torch.cat(
            [
                obs,
                actions,
                episodes.rewards[..., None],
                next_obs,
                episodes.terminated[..., None].float(),
            ],
            -1,
        )
        return [rows[keep[:, b], b] for b in range(rows.shape[1])]

    def context_of(self, rows: Tensor) -> Tensor:
        """Encoder inputs [..., context_dim] of buffer rows [..., width]: (s, a, r[, s'])."""
        sar = rows[..., : self.obs_dim + self.action_dim + 1]
        if not self.config.use_next_obs_in_context:
            return sar
        return torch.cat([sar, rows[..., -1 - self.obs_dim : -1]], -1)

    def sample_z(
        self, mean: Tensor, variance: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """z ~ N(mean, variance), [..., L], drawn with `generator` (default: the training one)
        on the CPU and moved to mean's device."""
        noise = torch.randn(mean.shape, generator=generator or self.generator)
        return mean + variance.sqrt() * noise.to(mean.device)

    def posterior_from_buffer(self, tasks: Tensor) -> tuple[Tensor, Tensor]:
        """q(z|c) of each task [len(tasks), L], c = `context_batch_size` rows of its encoder
        buffer."""
        rows = self.encoder_buffer.sample(tasks, self.config.context_batch_size, self.generator)
        with torch.no_grad():
            return self.encoder(self.context_of(rows))

    def rollout(
        self, tasks: Sequence[Task], zs: Tensor, deterministic: bool = False
    ) -> list[Episodes]:
        """One episode per (task, z) pair, z [len(tasks), L], in chunks of the sampler's envs
        (each chunk copies the policy to the CPU once where it lives on a GPU)."""
        size = self.config.max_envs
        zs = zs.cpu()
        return [
            self.sampler.sample(
                self.policy,
                tasks[i : i + size],
                1,
                [{"z": z} for z in zs[i : i + size]],
                deterministic=deterministic,
            )
            for i in range(0, len(tasks), size)
        ]

    def collect(
        self, task_ids: Tensor, episodes: int, update_posterior: bool, to_encoder: bool
    ) -> tuple[int, Collected, Collected]:
        """oyster's `collect_data`, batched across the training tasks `task_ids`: `episodes` per
        task, the first with z from the prior (oyster's `clear_z`). With `update_posterior` the
        posterior is inferred again from the task's encoder buffer after every episode
        (`update_posterior_rate` = 1) and each later episode runs with z from it; without, all
        run with z from the prior (rate ∞). Rows go to the replay buffer (and, `to_encoder`, to
        the encoder buffer). Returns env steps and the outcomes of the prior-z and the
        posterior-z episodes."""
        steps, prior_returns, posterior_returns = 0, Collected(), Collected()
        if episodes == 0:
            return steps, prior_returns, posterior_returns
        first = 1 if update_posterior else episodes
        ids = task_ids.repeat_interleave(first)
        zs = torch.randn(len(ids), self.config.latent_size, generator=self.generator)
        steps, prior_returns = self.run_and_store(ids, zs, to_encoder)
        done = first
        while done < episodes:
            # Each episode's posterior uses the encoder buffer as the episodes before it left
            # it; when they do not add to it, the rest can run together (one context each).
            count = 1 if to_encoder else episodes - done
            ids = task_ids.repeat_interleave(count)
            zs = self.sample_z(*self.posterior_from_buffer(ids))
            s, r = self.run_and_store(ids, zs, to_encoder)
            steps, done = steps + s, done + count
            posterior_returns.extend(r)
        return steps, prior_returns, posterior_returns

    def run_and_store(self, ids: Tensor, zs: Tensor, to_encoder: bool) -> tuple[int, Collected]:
        """One episode on training task ids[i] with zs[i] each; the rows go to the replay buffer
        (and the encoder buffer). Returns env steps and the episodes' outcomes."""
        steps, returns, column = 0, Collected(), 0
        for batch in self.rollout([self.train_tasks[i] for i in ids.tolist()], zs):
            steps += batch.num_env_steps
            returns.add(batch)
            for rows in self.transitions(batch):
                task = int(ids[column])
                self.replay.add(task, rows)
                if to_encoder:
                    self.encoder_buffer.add(task, rows)
                column += 1
        return steps, returns

    # ----- training ---------------------------------------------------------------------------

    def gradient_step(self, tasks: Tensor) -> dict[str, Tensor]:
        """One SAC + encoder update on the meta-batch `tasks` [M] (all tasks in one forward);
        its metrics as 0-dim tensors on the device (`update`)."""
        cfg = self.config
        context = self.context_of(
            self.encoder_buffer.sample(tasks, cfg.context_batch_size, self.generator)
        )
        return self.update(context, self.replay.sample(tasks, cfg.batch_size, self.generator))

    def update(self, context: Tensor, batch: Tensor) -> dict[str, Tensor]:
        """The updates of one gradient step from context [M, N, context_dim] and replay rows
        [M, B, width] of M tasks: critics and encoder, then actor (then α), then the targets.
        The metrics are detached 0-dim float64 tensors on the device, not Python floats: a
        float would wait for the device after every step (`train_step` sums them and reads the
        sums once per iteration; float64, so the sums are a Python float sum's)."""
        cfg = self.config
        critic = self.critic_objective(context, batch)
        self.optimizers["critic"].zero_grad()
        self.optimizers["encoder"].zero_grad()
        (critic["q_loss"] + cfg.kl_weight * critic["kl"]).backward()
        self.optimizers["critic"].step()
        self.optimizers["encoder"].step()

        actor = self.actor_objective(batch[..., : self.obs_dim], critic["z"])
        self.optimizers["policy"].zero_grad()
        (actor["pi_loss"] + actor["reg"]).backward()
        self.optimizers["policy"].step()

        if cfg.automatic_entropy:
            self.optimizers["alpha"].zero_grad()
            alpha_loss(self.log_alpha, actor["log_prob"], self.target_entropy).backward()
            self.optimizers["alpha"].step()
        polyak_update(self.target_critic, self.critic, cfg.tau)
        metrics = {
            "critic_loss": critic["q_loss"],
            "actor_loss": actor["pi_loss"],
            "kl": critic["kl"].double() / len(batch),
            "q_mean": critic["q1"].mean(),
            "entropy": -actor["log_prob"].mean(),
            "z_variance": critic["variance"].mean(),
        }
        return {key: value.detach().double() for key, value in metrics.items()}

    def critic_objective(self, context: Tensor, batch: Tensor) -> dict[str, Tensor]:
        """The critics' side of a gradient step, its graph reaching the critics and (through
        z) the encoder: `q_loss` (both critics' TD errors), `kl` (Σ over the M tasks),
        `z` [M, B, L] (reparameterized from q(z|context)), `q1` [M, B] and `variance` [M, L].
        The target is computed without gradients."""
        cfg = self.config
        o, a_dim = self.obs_dim, self.action_dim
        obs, actions = batch[..., :o], batch[..., o : o + a_dim]
        rewards, next_obs = batch[..., o + a_dim], batch[..., o + a_dim + 1 : -1]
        terminated = batch[..., -1]

        mean, variance = self.encoder(context)  # [M, L]
        z_task = self.sample_z(mean, variance)
        z = z_task[:, None].expand(-1, batch.shape[1], -1)  # [M, B, L]
        kl = kl_to_standard_normal(mean, variance).sum()
        with torch.no_grad():
            next_actions, next_log_prob, _, _ = self.policy.rsample(next_obs, z, self.generator)
            next_q1, next_q2 = self.target_critic(next_obs, next_actions, z)
            target = soft_q_target(
                cfg.reward_scale * rewards,
                terminated,
                next_q1,
                next_q2,
                next_log_prob,
                cfg.discount,
                self.log_alpha.exp().detach(),
            )
        q1, q2 = self.critic(obs, actions, z)
        return {
            "q_loss": critic_loss(q1, q2, target),
            "kl": kl,
            "z": z,
            "q1": q1,
            "variance": variance,
        }

    def actor_objective(self, obs: Tensor, z: Tensor) -> dict[str, Tensor]:
        """The actor's side of a gradient step on obs [M, B, obs_dim]: `pi_loss`, `reg` (the
        mean² and log-std² regularizers) and `log_prob` [M, B]. z is held constant (PEARL
        trains the encoder through the critic only) and so are the critics' weights: the
        graph reaches the actor's parameters alone."""
        cfg = self.config
        z = z.detach()
        new_actions, log_prob, pre_mean, log_std = self.policy.rsample(obs, z, self.generator)
        self.critic.requires_grad_(False)  # gradients to the actions only, not the weights
        try:
            new_q1, new_q2 = self.critic(obs, new_actions, z)
        finally:
            self.critic.requires_grad_(True)
        pi_loss = actor_loss(log_prob, new_q1, new_q2, self.log_alpha.exp().detach())
        reg = cfg.policy_mean_reg * (pre_mean**2).mean() + cfg.policy_std_reg * (log_std**2).mean()
        return {"pi_loss": pi_loss, "reg": reg, "log_prob": log_prob}

    def train_step(self) -> dict[str, float]:
        """One iteration (see the module docstring). Metrics: env steps, the mean returns of this
        iteration's episodes on training tasks with z from the prior and with z from a
        posterior (`prior_return`, `posterior_return`), the mean losses of the
        gradient steps, `test_return` on held-out tasks (every `eval_every` iterations, else
        NaN) and `alpha`."""
        cfg = self.config
        steps, prior_returns, posterior_returns = 0, Collected(), Collected()
        if self.iteration == 0:
            all_tasks = torch.arange(cfg.num_train_tasks)
            steps, prior_returns, _ = self.collect(all_tasks, cfg.num_initial_episodes, False, True)
        sampled = torch.randperm(cfg.num_train_tasks, generator=self.generator)
        sampled = sampled[: cfg.num_tasks_sample]
        for task in sampled.tolist():
            self.encoder_buffer.clear(task)
        for episodes, update_posterior, to_encoder in (
            (cfg.num_prior_episodes, False, True),
            (cfg.num_posterior_episodes, True, True),
            (cfg.num_extra_posterior_episodes, True, False),
        ):
            s, prior, posterior = self.collect(sampled, episodes, update_posterior, to_encoder)
            steps += s
            prior_returns.extend(prior)
            posterior_returns.extend(posterior)

        totals: dict[str, Tensor] = {}
        self.progress.phase("gradient steps", cfg.num_gradient_steps)
        for _ in range(cfg.num_gradient_steps):
            tasks = torch.randint(
                cfg.num_train_tasks, (cfg.meta_batch_size,), generator=self.generator
            )
            for key, value in self.gradient_step(tasks).items():
                totals[key] = totals[key] + value if key in totals else value
            self.progress.advance()
        losses = {
            key: totals[key].item() / cfg.num_gradient_steps if key in totals else math.nan
            for key in ("critic_loss", "actor_loss", "kl", "q_mean", "entropy", "z_variance")
        }
        self.iteration += 1
        test_return = test_success = math.nan
        if cfg.eval_every and self.iteration % cfg.eval_every == 0:
            test = self.trial_outcomes(self.eval_tasks, cfg.episodes_per_trial)
            test_return = test.returns[-1].mean().item()
            if test.successes is not None:
                test_success = test.successes[-1].mean().item()
        successes = {}
        if self.task_env.reports_success:  # Meta-World: the success rates beside the returns
            successes = {
                "prior_success": _mean(prior_returns.successes),
                "posterior_success": _mean(posterior_returns.successes),
                "test_success": test_success,
            }
        return {
            "env_steps": float(steps),
            "prior_return": _mean(prior_returns.returns),
            "posterior_return": _mean(posterior_returns.returns),
            "test_return": test_return,
            **successes,
            **losses,
            "alpha": self.log_alpha.exp().item(),
        }

    # ----- evaluation -------------------------------------------------------------------------

    def trial_returns(self, tasks: Sequence[Task], episodes: int) -> Tensor:
        """Return of episode i of one trial per task, `[episodes, len(tasks)]` (TrialAgent);
        see `trial_outcomes`."""
        return self.trial_outcomes(tasks, episodes).returns

    def trial_outcomes(self, tasks: Sequence[Task], episodes: int) -> EpisodeOutcomes:
        """Return (and success, where the env reports it) of episode i of one trial per task,
        `[episodes, len(tasks)]`:
        episode 0 with z from the prior, episode i with z from the posterior given all the
        transitions of episodes 0..i-1 of that task (the paper's online evaluation). z and the
        sampler's randomness come from evaluation's own streams (`eval_generator`,
        `eval_sampler_state`): the training streams are left where they were."""
        return self._trial(tasks, episodes)[0]

    def posterior_after(self, tasks: Sequence[Task], episodes: int) -> tuple[Tensor, Tensor, int]:
        """q(z|c) [len(tasks), L] after a trial of `episodes` episodes per task run as
        `trial_outcomes` runs it (the prior for 0 episodes), and the trial's env steps: what a
        deployed PEARL policy acts on (`metarl.load`)."""
        _, context, steps = self._trial(tasks, episodes)
        if episodes == 0:
            n, size = len(tasks), self.config.latent_size
            zeros = torch.zeros(n, size, device=self.device)
            return zeros, torch.ones(n, size, device=self.device), 0
        with torch.no_grad():
            mean, variance = self.posterior_of(context)
        return mean, variance, steps

    def _trial(
        self, tasks: Sequence[Task], episodes: int
    ) -> tuple[EpisodeOutcomes, list[list[Tensor]], int]:
        """`trial_outcomes`, the context each task gathered, and the env steps."""
        cfg, n = self.config, len(tasks)
        steps = 0
        returns = torch.zeros(episodes, n)
        successes = torch.zeros(episodes, n) if self.task_env.reports_success else None
        context: list[list[Tensor]] = [[] for _ in range(n)]
        training_sampler_state = self.sampler.state_dict()
        self.sampler.load_state_dict(self.eval_sampler_state)
        try:
            for i in range(episodes):
                with torch.no_grad():
                    if i == 0:
                        mean = torch.zeros(n, cfg.latent_size, device=self.device)
                        variance = torch.ones(n, cfg.latent_size, device=self.device)
                    else:
                        mean, variance = self.posterior_of(context)
                zs = self.sample_z(mean, variance, self.eval_generator)
                column = 0
                for batch in self.rollout(list(tasks), zs, deterministic=cfg.eval_deterministic):
                    steps += batch.num_env_steps
                    returns[i, column : column + len(batch.tasks)] = batch.episode_returns().float()
                    if successes is not None:
                        success = batch.episode_successes().float()
                        successes[i, column : column + len(batch.tasks)] = success
                    for rows in self.transitions(batch):
                        context[column].append(rows)
                        column += 1
        finally:
            self.eval_sampler_state = self.sampler.state_dict()
            self.sampler.load_state_dict(training_sampler_state)
        return EpisodeOutcomes(returns, successes), context, int(steps)

    def posterior_of(self, context: list[list[Tensor]]) -> tuple[Tensor, Tensor]:
        """q(z|c) [n, L] for n tasks' lists of row blocks (padded and masked to one tensor)."""
        joined = [torch.cat(blocks) for blocks in context]
        length = max(1, max(len(rows) for rows in joined))
        padded = torch.zeros(len(joined), length, self.replay.width)
        mask = torch.zeros(len(joined), length)
        for j, rows in enumerate(joined):
            padded[j, : len(rows)], mask[j, : len(rows)] = rows, 1.0
        padded, mask = padded.to(self.device), mask.to(self.device)
        return self.encoder(self.context_of(padded), mask)

    # ----- checkpoints ------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimizers, α, both buffers, the iteration and every RNG state (training's
        and evaluation's)."""
        return {
            "iteration": self.iteration,
            "encoder": self.encoder.state_dict(),
            "policy": self.policy.state_dict(),
            "critic": self.critic.state_dict(),
            "target_critic": self.target_critic.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "optimizers": {k: opt.state_dict() for k, opt in self.optimizers.items()},
            "replay": self.replay.state_dict(),
            "encoder_buffer": self.encoder_buffer.state_dict(),
            "generator": self.generator.get_state(),
            "sampler": self.sampler.state_dict(),
            "eval_generator": self.eval_generator.get_state(),
            "eval_sampler": self.eval_sampler_state,
        }

    def export_state_dict(self) -> dict[str, Any]:
        """What evaluation needs (`checkpoints/policy.pt`): `state_dict` without the replay
        and encoder buffers and the optimizers, which only training uses and which grow to tens
        of megabytes; `load_state_dict` takes it, leaving those parts as they are."""
        bulky = ("replay", "encoder_buffer", "optimizers")
        return {k: v for k, v in self.state_dict().items() if k not in bulky}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` (or `export_state_dict`) returned."""
        self.iteration = state["iteration"]
        self.encoder.load_state_dict(state["encoder"])
        self.policy.load_state_dict(state["policy"])
        self.critic.load_state_dict(state["critic"])
        self.target_critic.load_state_dict(state["target_critic"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        if "optimizers" in state:  # absent from an export
            for key, optimizer in self.optimizers.items():
                optimizer.load_state_dict(state["optimizers"][key])
            self.replay.load_state_dict(state["replay"])
            self.encoder_buffer.load_state_dict(state["encoder_buffer"])
        self.generator.set_state(state["generator"])
        self.sampler.load_state_dict(state["sampler"])
        if "eval_generator" in state:  # absent from checkpoints written before issue 11
            self.eval_generator.set_state(state["eval_generator"])
            self.eval_sampler_state = copy.deepcopy(state["eval_sampler"])

    def close(self) -> None:
        """Release the sampler."""
        sampler = getattr(self, "sampler", None)
        if sampler is not None:
            sampler.close()


@dataclass
class Collected:
    """The returns of a collection's episodes, one per episode, and their successes (1 or 0)
    where the env reports success (empty where it does not)."""

    returns: list[float] = field(default_factory=list)
    successes: list[float] = field(default_factory=list)

    def add(self, batch: Episodes) -> None:
        """Append the episodes of `batch`."""
        self.returns += batch.episode_returns().tolist()
        success = batch.episode_successes()
        if success is not None:
            self.successes += success.tolist()

    def extend(self, other: Collected) -> None:
        """Append the episodes of `other`."""
        self.returns += other.returns
        self.successes += other.successes


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan
