"""Few-shot learners on the RL commands (issue 19): `metarl train LEARNER --env sinusoid|digits`,
`evaluate`, `plot`, `--resume`, `list` and `train LEARNER --help`, a SIGKILL during a run that
saves once per `save_seconds`, and one-line errors for what mixes the two halves."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from metarl.cli import main
from metarl.training.logger import read_progress

KILLABLE = Path(__file__).parents[1] / "training" / "killable.py"
TINY = ["--set", "meta_batch_size=4", "--set", "hidden_sizes=[8]", "--set", "shots=3"]


def rows(run_dir):
    return [{k: v for k, v in row.items() if k != "wall_time"} for row in read_progress(run_dir)]


def test_train_evaluate_plot_and_resume_a_sinusoid_run(tmp_path, capsys):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert (
        main(
            [
                "train",
                "maml",
                "--env",
                "sinusoid",
                "--iterations",
                "30",
                *TINY,
                "--out",
                str(straight),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "train",
                "maml",
                "--env",
                "sinusoid",
                "--iterations",
                "12",
                *TINY,
                "--out",
                str(resumed),
            ]
        )
        == 0
    )
    assert main(["train", "--resume", str(resumed), "--iterations", "30"]) == 0
    assert rows(resumed / "progress.csv") == rows(straight / "progress.csv")
    assert "checkpoint_every: 5000" in (straight / "config.yaml").read_text()  # not RL's 50
    first = read_progress(straight / "progress.csv")[0]
    assert set(first) == {"iteration", "examples", "wall_time", "pre_loss", "post_loss"}
    assert first["examples"] == 4 * (3 + 10)
    capsys.readouterr()
    assert main(["evaluate", str(straight), "--tasks", "20", "--adapt-steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "after 2 step(s)" in out and "scratch (trained on support)" in out
    result = json.loads((straight / "eval" / "adaptation.json").read_text())
    assert result["axis"] == "adapt_steps" and len(result["mean_loss"]) == 3
    assert "mean_accuracy" not in result and len(result["scratch"]["mean_loss"]) == 1
    assert (straight / "eval" / "adaptation.csv").read_text().splitlines()[0] == (
        "adapt_steps,mean_loss,loss_ci95,scratch_loss,scratch_loss_ci95"
    )
    assert main(["plot", str(straight), "-o", str(tmp_path / "curve.png")]) == 0
    assert (tmp_path / "curve.png").stat().st_size > 0
    assert main(["plot", "--adaptation", str(straight), "-o", str(tmp_path / "steps.png")]) == 0
    assert (tmp_path / "steps.png").stat().st_size > 0


def test_a_metric_learner_on_digits_is_evaluated_for_k_shots(tmp_path, capsys):
    run = tmp_path / "proto"
    sets = ["--set", "meta_batch_size=2", "--set", "backbone=mlp", "--set", "hidden_sizes=[16]"]
    assert (
        main(
            [
                "train",
                "protonet",
                "--env",
                "digits",
                "--iterations",
                "3",
                *sets,
                "--set",
                "shots=1",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["evaluate", str(run), "--tasks", "10", "--shots", "2"]) == 0
    assert "2-shot" in capsys.readouterr().out
    for flags in (["--episodes", "3"], ["--sampler", "local"]):
        assert main(["evaluate", str(run), *flags]) == 2
        assert "a few-shot run adapts on --shots" in capsys.readouterr().err
    result = json.loads((run / "eval" / "adaptation.json").read_text())
    assert result["axis"] == "shots" and result["shots"] == [2]
    assert 0 <= result["mean_accuracy"][0] <= 1 and "mean_accuracy" in result["scratch"]

    # another learner on the same backbone meets the same held-out tasks: its own scratch
    # baseline is the protonet's, bit for bit, and --scratch-from takes it (checked by its key)
    maml = tmp_path / "maml"
    train = ["train", "maml", "--env", "digits", "--iterations", "2", *sets, "--out", str(maml)]
    assert main([*train, "--set", "shots=1"]) == 0
    assert main(["evaluate", str(maml), "--tasks", "10", "--shots", "2", "--adapt-steps", "1"]) == 0
    own = json.loads((maml / "eval" / "adaptation.json").read_text())
    assert own["scratch"] == result["scratch"]
    evaluate = ["evaluate", str(maml), "--tasks", "10", "--adapt-steps", "1"]
    capsys.readouterr()
    assert main([*evaluate, "--shots", "2", "--scratch-from", str(run)]) == 0
    assert json.loads((maml / "eval" / "adaptation.json").read_text()) == own
    narrow = tmp_path / "narrow"  # the same tasks, another network
    train = ["train", "protonet", "--env", "digits", "--iterations", "1", "--set", "shots=1"]
    narrow_sets = ["--set", "backbone=mlp", "--set", "hidden_sizes=[8]", "--out", str(narrow)]
    assert main([*train, *narrow_sets]) == 0
    assert main(["evaluate", str(narrow), "--tasks", "10", "--shots", "2"]) == 0
    capsys.readouterr()
    for flags in (
        ["--shots", "1", "--scratch-from", str(run)],
        ["--seed", "3", "--shots", "2", "--scratch-from", str(run)],
        ["--shots", "2", "--scratch-from", str(narrow)],
    ):
        assert main([*evaluate, *flags]) == 2
        error = capsys.readouterr().err
        assert error.startswith("metarl: error: that scratch baseline was trained on other tasks")
    assert main([*evaluate, "--scratch-from", str(tmp_path)]) == 2
    assert "has no evaluation to take a scratch baseline from" in capsys.readouterr().err


def test_list_and_help_show_the_fewshot_half(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "Few-shot task distributions" in out and "matching-net" in out and "sinusoid" in out
    with pytest.raises(SystemExit):
        main(["train", "reptile", "--env", "sinusoid", "--help"])
    out = capsys.readouterr().out
    assert "ReptileConfig" in out and "queries (int" in out and "anneal" in out
    with pytest.raises(SystemExit):
        main(["train", "reptile", "--help"])  # the RL Reptile, with a pointer to the other
    out = capsys.readouterr().out
    assert "the few-shot reptile's keys: metarl train reptile --env sinusoid --help" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["train", "maml", "--env", "halfcheetah-vel"],
            "maml is a few-shot learner: its envs are sinusoid, digits, images, not "
            "halfcheetah-vel (the RL agent is maml-trpo)",
        ),
        (
            ["train", "maml-trpo", "--env", "sinusoid"],
            "maml-trpo is an RL agent, and sinusoid a few-shot task distribution",
        ),
        (
            ["train", "protonet", "--env", "sinusoid"],
            "protonet needs a classification task distribution",
        ),
        (
            ["train", "maml", "--env", "digits", "--env-kwargs", '{"way": 5}'],
            "bad kwargs for fewshot/digits",
        ),
        (
            ["train", "maml", "--env", "sinusoid", "--set", "shots=0"],
            "config key 'shots' must be an integer >= 1, got 0",
        ),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert main([*args, "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("metarl: error: ") and message in error
    assert len(error.strip().splitlines()) == 1
    assert not out.exists()


def test_sigkill_at_any_save_resumes_to_the_rows_of_an_uninterrupted_run(tmp_path):
    def metarl(kill_at, *args):
        done = subprocess.run(
            [sys.executable, str(KILLABLE), str(kill_at), *args],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode

    command = [
        "train",
        "fo-maml",
        "--env",
        "sinusoid",
        "--iterations",
        "7",
        "--checkpoint-every",
        "3",
        *TINY,
    ]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert metarl(0, *command, "--out", str(straight)) == 0
    # killed after config.yaml's 3 write events, inside the first save; then each resumed run
    # killed at another of its write events (the resume's rewrite of progress.csv, later saves)
    assert metarl(5, *command, "--out", str(killed)) == -9
    for kill_at in (5, 6, 2, 11):
        assert metarl(kill_at, "train", "--resume", str(killed)) == -9
    assert metarl(0, "train", "--resume", str(killed)) == 0
    assert rows(killed / "progress.csv") == rows(straight / "progress.csv")
    assert len(rows(killed / "progress.csv")) == 7


def test_shots_and_scratch_from_on_an_rl_run_are_one_line_errors(capsys):
    rl_run = Path(__file__).parents[2] / "benchmarks" / "results" / "maml-trpo-navigation2d"
    assert main(["evaluate", str(rl_run), "--shots", "2"]) == 2
    assert "--shots is for few-shot runs" in capsys.readouterr().err
    assert main(["evaluate", str(rl_run), "--scratch-from", str(rl_run)]) == 2
    assert "--scratch-from is for few-shot runs" in capsys.readouterr().err


def test_every_fewshot_learner_help_lists_its_config_keys_with_docstrings(capsys):
    import dataclasses

    from metarl.cli.agent_help import field_docs
    from metarl.fewshot.registry import FEWSHOT_REGISTRY

    for name, spec in FEWSHOT_REGISTRY.items():
        with pytest.raises(SystemExit):
            main(["train", name, "--env", "digits", "--help"])
        out = capsys.readouterr().out
        docs = field_docs(spec.config_class)
        for field in dataclasses.fields(spec.config_class):
            assert f"\n  {field.name} (" in out and field.name in docs, (name, field.name)
    with pytest.raises(SystemExit):
        main(["train", "fo-maml", "--env", "sinusoid", "--help"])
    assert "first_order (bool, default true)" in capsys.readouterr().out
