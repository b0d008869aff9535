"""`metarl bench learner`: a PEARL step's FLOP count against a hand count from its layer shapes,
the quick run's records, and bad input as one line with exit status 2."""

import itertools
import json

import gymnasium as gym
import pytest

from metarl.cli import bench_learner, main


def linear_flops(rows, sizes):
    """Multiply-adds ×2 of an MLP with layer widths `sizes` on `rows` inputs."""
    return sum(2 * rows * fan_in * fan_out for fan_in, fan_out in itertools.pairwise(sizes))


def first_layer_flops(rows, sizes):
    return 2 * rows * sizes[0] * sizes[1]


def test_pearl_step_flops_equal_the_hand_count_from_the_layer_shapes():
    tasks, batch, context, latent = 3, 8, 5, 2
    hidden, encoder_hidden = [6, 7], [4, 5]
    workload = bench_learner.Workload(
        "pearl",
        "tiny",
        {
            "meta_batch_size": tasks,
            "batch_size": batch,
            "context_batch_size": context,
            "latent_size": latent,
            "hidden_sizes": hidden,
            "encoder_hidden_sizes": encoder_hidden,
            "num_prior_episodes": 1,
            "horizon": 10,
            "num_workers": 0,
        },
    )
    record = bench_learner.measure(
        workload, "metarl/Navigation2D-v0", steps=1, peak=bench_learner.Peak(1.0, 1)
    )

    env = gym.make("metarl/Navigation2D-v0")
    obs, act = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    encoder = [2 * obs + act + 1, *encoder_hidden, 2 * latent]  # (s, a, r, s') → μ, σ²
    policy = [obs + latent, *hidden, 2 * act]  # (s, z) → mean, log-std
    q = [obs + act + latent, *hidden, 1]  # (s, a, z) → Q, twice
    rows, context_rows = tasks * batch, tasks * context
    # A Linear's forward is F; its backward F for the weight gradient and F for the input's,
    # the latter only where the input needs a gradient.
    f_enc, f_pol, f_q = (
        linear_flops(context_rows, encoder),
        linear_flops(rows, policy),
        linear_flops(rows, q),
    )
    # encoder: forward; backward (from the critics' loss through z, and the KL) to every
    # weight and to every layer's input but the context's
    encoder_step = 3 * f_enc - first_layer_flops(context_rows, encoder)
    # the Q target, without gradients: the policy on s' and both target critics
    target = f_pol + 2 * f_q
    # the critics' loss: both critics forward, backward to their weights and inputs (z needs
    # the gradient, for the encoder)
    critics = 2 * 3 * f_q
    # the actor's loss: the policy forward and backward to its weights (not to s and z)...
    actor = 3 * f_pol - first_layer_flops(rows, policy)
    # ...through both critics, frozen: backward to their inputs (the actions) only
    actor_through_critics = 2 * 2 * f_q
    expected = encoder_step + target + critics + actor + actor_through_critics
    assert record.flops_per_step == expected
    assert {o.op for o in record.top_ops} == {"aten.mm", "aten.addmm"}
    assert sum(o.flops for o in record.top_ops) == expected


def test_quick_json_records_have_positive_flops_times_and_a_fraction_of_peak(capsys):
    assert main(["bench", "learner", "--quick", "--json", "--steps", "1", "--threads", "1"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["learner"] for r in records] == ["pearl", "maml-trpo", "rl2-trpo"]
    for r in records:
        assert r["env"] == "metarl/HalfCheetahVel-v0" and r["config"] == "quick"
        assert r["flops_per_step"] > 0 and r["seconds_per_step"] > 0 and r["gflops_per_s"] > 0
        assert 0 < r["fraction_of_peak"] < 1.5 and r["peak_gflops_per_s"] > 0
        assert r["threads"] == 1 and r["steps"] == 1 and r["workload"]
        assert 1 <= len(r["top_ops"]) <= 3 and r["top_ops"][0]["share"] > 0
    assert "bmm" in records[1]["top_ops"][0]["op"]  # MAML's tasks run vmapped


def test_table_shows_the_peak_and_each_learners_figures():
    op = bench_learner.OpShare("aten.mm", 3 * 10**9, 0.75)
    record = bench_learner.Record(
        "pearl", "PEARLConfig()", "metarl/HalfCheetahVel-v0", "16 tasks × 256 transitions",
        4 * 10**9, 0.05, 3, 80.0, 100.0, 0.8, 2, 2048, [op],
    )  # fmt: skip
    table = bench_learner.format_table([record])
    assert "peak 100.0 GFLOP/s" in table and "2048²" in table
    assert "| pearl | PEARLConfig() | 16 tasks × 256 transitions | 4.000 | 50.0 | 80.00 |" in table
    assert "80.0% | mm 75% |" in table


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--learners", "pearl,sac"], "unknown learner(s) 'sac'"),
        (["--steps", "0"], "argument --steps: must be an integer >= 1, got 0"),
        (["--threads", "0"], "argument --threads: must be an integer >= 1, got 0"),
        (["--env", "nowhere"], "unknown env 'nowhere'"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(capsys, argv, message):
    assert exit_status(["bench", "learner", *argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("metarl: error: ") and message in lines[0]
    assert captured.out == ""


def exit_status(args):
    """The exit status of `metarl ARGS` (argparse's errors exit through SystemExit)."""
    try:
        return main(args)
    except SystemExit as exit_:
        return exit_.code
