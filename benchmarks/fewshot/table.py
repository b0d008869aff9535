"""The few-shot tables of benchmarks/README.md from the committed run folders (issue 19):
`python benchmarks/fewshot/table.py [RESULTS]` prints them as Markdown.

Gradient learners are read at the number of inner steps they were meta-trained for (MAML's
1, Reptile's and the meta-LSTM's 5) and after 10; metric learners at their one point. Every
cell is the mean over the evaluation's held-out tasks ± its 95% CI; the scratch baseline is
the same evaluation's, on the same tasks."""

import json
import sys
from pathlib import Path

import yaml

RESULTS = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/fewshot")
LEARNERS = [
    "maml",
    "fo-maml",
    "meta-sgd",
    "reptile",
    "meta-lstm",
    "pretrained",
    "protonet",
    "matching-net",
]


def load(folder):
    """(config record, evaluation result, last progress row) of a run folder, or None."""
    result = folder / "eval" / "adaptation.json"
    if not result.is_file():
        return None
    record = yaml.safe_load((folder / "config.yaml").read_text())
    lines = (folder / "progress.csv").read_text().splitlines()
    last = dict(zip(lines[0].split(","), lines[-1].split(","), strict=True))
    return record, json.loads(result.read_text()), last


def trained_steps(record, result):
    """The point of the curve a learner is read at: its meta-training steps (metric: 0)."""
    if result["axis"] != "adapt_steps":
        return 0
    return record["config"].get("num_inner_steps", 1)


def cell(result, metric, point, percent=False):
    scale = 100 if percent else 1
    mean, ci = result[f"mean_{metric}"][point], result[f"{metric}_ci95"][point]
    return f"{scale * mean:.1f} ± {scale * ci:.1f}" if percent else f"{mean:.3f} ± {ci:.3f}"


def sinusoid():
    columns = ["iterations", "wall time", "MSE before", "after its steps", "after 10", "scratch"]
    print("| learner | " + " | ".join(columns) + " |")
    print("|---|---|---|---|---|---|---|")
    for name in LEARNERS:
        loaded = load(RESULTS / f"{name}-sinusoid")
        if loaded is None:
            continue
        record, result, last = loaded
        k = trained_steps(record, result)
        minutes = float(last["wall_time"]) / 60
        print(
            f"| {name} | {last['iteration']} | {minutes:.1f} min | {cell(result, 'loss', 0)} | "
            f"{cell(result, 'loss', k)} ({k}) | {cell(result, 'loss', 10)} | "
            f"{cell(result['scratch'], 'loss', 0)} |"
        )


def digits():
    """Accuracy after the trained steps or at K shots; one scratch row per network width (the
    meta-LSTM's runs use a 16-filter net, so their scratch baseline is another network's)."""
    settings = [(1, 1), (1, 5), (0, 1), (0, 5)]
    head = " | ".join(f"{'shifted' if s else 'plain'}, {k}-shot" for s, k in settings)
    print(f"| learner | {head} |")
    print("|---|" + "---|" * len(settings))
    scratch = {}
    for name in LEARNERS:
        cells = []
        for shift, shots in settings:
            loaded = load(RESULTS / f"{name}-digits-shift{shift}-{shots}-shot")
            if loaded is None:
                cells.append("")
                continue
            record, result, _ = loaded
            cells.append(cell(result, "accuracy", trained_steps(record, result), percent=True))
            width = record["config"].get("conv_channels", 64)
            by_setting = scratch.setdefault(width, {})
            by_setting.setdefault((shift, shots), cell(result["scratch"], "accuracy", 0, True))
        if any(cells):
            print(f"| {name} | " + " | ".join(cells) + " |")
    for width, by_setting in sorted(scratch.items(), reverse=True):
        row = " | ".join(by_setting.get(s, "") for s in settings)
        print(f"| scratch ({width}-filter net) | {row} |")


if __name__ == "__main__":
    print("Sinusoid (K = 10, 600 held-out tasks):\n")
    sinusoid()
    print("\nDigits (5-way, 600 held-out tasks, accuracy %):\n")
    digits()
