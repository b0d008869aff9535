"""SNAIL and the causal Transformer (issue 20): causality (no output depends on a later step,
by gradients), stepping with the cache equals the one-pass sequence, the blocks against
independent references (`F.conv1d` for the dilated causal convolution, an explicit softmax
loop for attention), and RL² sampling with them reproducing training's log-probs."""

import copy
import math

import gymnasium as gym
import pytest
import torch
from torch.nn import functional as F

from metarl.agents.rl2 import RL2PPO, RL2TRPO, RL2PPOConfig, RL2TRPOConfig
from metarl.policies import SNAILPolicy, TransformerPolicy, unroll
from metarl.policies.attention import _AttentionBlock, _DenseBlock, tc_dilations

T, B, OBS = 23, 3, 4
SPACES = {"box": gym.spaces.Box(-1, 1, (2,)), "discrete": gym.spaces.Discrete(3)}


def make(kind, space):
    torch.manual_seed(0)
    if kind == "snail":
        return SNAILPolicy(OBS, SPACES[space], trial_length=T, filters=4, width=8)
    return TransformerPolicy(OBS, SPACES[space], width=8, blocks=2, heads=2)


def trial(space, generator_seed=1):
    g = torch.Generator().manual_seed(generator_seed)
    obs = torch.randn(T, B, OBS, generator=g)
    if space == "discrete":
        actions = torch.randint(0, 3, (T, B), generator=g)
    else:
        actions = torch.randn(T, B, 2, generator=g)
    rewards = torch.randn(T, B, generator=g)
    dones = (torch.rand(T, B, generator=g) < 0.2).float()
    return obs, actions, rewards, dones


def first(output):
    """The logits, or the Gaussian mean."""
    return output[0] if isinstance(output, tuple) else output


KINDS = [(kind, space) for kind in ("snail", "transformer") for space in SPACES]


@pytest.mark.parametrize(("kind", "space"), KINDS)
def test_no_output_depends_on_a_later_step(kind, space):
    policy = make(kind, space)
    obs, actions, rewards, dones = trial(space)
    obs.requires_grad_(True)
    rewards.requires_grad_(True)
    out = first(policy(obs, actions, rewards, dones, policy.initial_hidden(B))[0])
    for t in (0, 7, T - 2):
        grads = torch.autograd.grad(out[t].sum(), (obs, rewards), retain_graph=True)
        for grad in grads:
            assert torch.all(grad[t + 1 :] == 0), f"step {t} reads a later step"
            assert grad[: t + 1].abs().sum() > 0
    # the last step reads the first: the receptive field spans the trial
    grads = torch.autograd.grad(out[-1].sum(), obs)[0]
    assert grads[0].abs().sum() > 0


@pytest.mark.parametrize(("kind", "space"), KINDS)
def test_stepping_with_the_cache_equals_the_sequence(kind, space):
    policy = make(kind, space)
    obs, actions, rewards, dones = trial(space)
    with torch.no_grad():
        whole, after = policy(obs, actions, rewards, dones, policy.initial_hidden(B))
        hidden, steps = policy.initial_hidden(B), []
        for t in range(T):
            out, hidden = policy(obs[t], actions[t], rewards[t], dones[t], hidden)
            steps.append(out)
        torch.testing.assert_close(torch.stack([first(o) for o in steps]), first(whole))
        if space == "box":  # the state-independent log-std
            torch.testing.assert_close(steps[0][1], whole[1][0])
        # the sequence's final cache continues the trial as the stepped one does
        nxt = (obs[0], actions[0], rewards[0], dones[0])
        torch.testing.assert_close(first(policy(*nxt, after)[0]), first(policy(*nxt, hidden)[0]))


def test_a_sequence_must_start_from_the_empty_cache():
    policy = make("transformer", "box")
    obs, actions, rewards, dones = trial("box")
    with torch.no_grad():
        _, hidden = policy(obs[0], actions[0], rewards[0], dones[0], policy.initial_hidden(B))
        with pytest.raises(ValueError, match="a sequence runs from the empty cache"):
            policy(obs, actions, rewards, dones, hidden)


def test_the_dense_block_is_a_gated_dilated_causal_convolution():
    torch.manual_seed(0)
    width, filters, dilation = 3, 2, 4
    block = _DenseBlock(width, dilation, filters)
    x = torch.randn(B, T, width)
    out, _ = block.run(x, None, 0)
    # the reference: a kernel-2 conv1d of dilation d over x padded with d zeros on the left
    kernel = torch.stack([block.back.weight, block.now.weight], -1)  # [2F, width, 2]
    conv = F.conv1d(
        F.pad(x.transpose(1, 2), (dilation, 0)), kernel, block.now.bias, dilation=dilation
    )
    f, g = conv.transpose(1, 2).chunk(2, -1)
    torch.testing.assert_close(out, torch.cat([x, torch.tanh(f) * torch.sigmoid(g)], -1))


def test_the_attention_block_against_an_explicit_softmax():
    torch.manual_seed(0)
    block = _AttentionBlock(3, key_size=4, value_size=2)
    x = torch.randn(B, 6, 3)
    with torch.no_grad():
        out, _ = block.run(x, None, 0)
        att = block.attention
        q, k, v = att.query(x), att.key(x), att.value(x)
    for b in range(B):
        for i in range(6):
            logits = torch.tensor([float(q[b, i] @ k[b, j]) / math.sqrt(4) for j in range(i + 1)])
            weights = torch.softmax(logits, 0)
            read = sum(weights[j] * v[b, j] for j in range(i + 1))
            torch.testing.assert_close(out[b, i], torch.cat([x[b, i], read]))


def test_tc_blocks_span_the_trial():
    assert tc_dilations(1) == [1] and tc_dilations(2) == [1]
    assert tc_dilations(10) == [1, 2, 4, 8]  # 4 dense blocks: receptive field 16 >= 10
    assert tc_dilations(400) == [2**i for i in range(9)]


SMALL = {"meta_batch_size": 5, "episodes_per_trial": 6, "num_workers": 0}


@pytest.mark.parametrize("kind", ["snail", "transformer"])
def test_rl2_sampling_with_an_attention_policy_gives_training_its_log_probs(kind):
    config = RL2TRPOConfig(**SMALL, policy=kind, max_kl=0.02)
    with RL2TRPO("bandit", config, env_kwargs={"k": 3}) as agent:
        episodes = agent.sample_trials(agent.task_env.sample_tasks(5), 6)
        with torch.no_grad():
            dist = agent.distribution(None, episodes.observations, episodes.previous_step_inputs())
        torch.testing.assert_close(dist.log_prob(episodes.actions), episodes.log_probs)
        metrics = agent.update(episodes, agent.advantages(episodes))  # TRPO's second derivatives
    assert metrics["loss_after"] < metrics["loss_before"] and metrics["kl"] <= 0.02 * 1.0001


@pytest.mark.parametrize("kind", ["snail", "transformer"])
def test_rl2_ppo_with_an_attention_policy_resumes_exactly(kind):
    config = RL2PPOConfig(**SMALL, policy=kind, minibatch_trials=2)
    with RL2PPO("navigation2d", config) as agent:
        agent.train_step()
        state = copy.deepcopy(agent.state_dict())  # the tensors are the live parameters
        expected = agent.train_step()
    with RL2PPO(
        "navigation2d", RL2PPOConfig(**SMALL, policy=kind, minibatch_trials=2, seed=3)
    ) as resumed:
        resumed.load_state_dict(state)
        assert resumed.train_step() == expected


def test_bad_policy_settings_are_one_line_errors():
    with pytest.raises(ValueError, match="policy"):
        RL2TRPOConfig(policy="lstm")
    with pytest.raises(ValueError, match="transformer_width must be even"):
        RL2TRPOConfig(policy="transformer", transformer_width=30, transformer_heads=4)
    with pytest.raises(ValueError, match="snail_filters"):
        RL2PPOConfig(policy="snail", snail_filters=0)


def test_unroll_runs_an_attention_policy_from_the_empty_cache():
    policy = make("snail", "discrete")
    obs, actions, rewards, dones = trial("discrete")
    with torch.no_grad():
        out = unroll(policy, None, obs, (actions, rewards, dones))
    assert out.shape == (T, B, 3)
