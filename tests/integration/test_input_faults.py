"""Bad reward models, reference CSVs and human labels (issue 16: D7, D9, D12, D13): refused before anything is
written, in one line naming the file."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from trex_bench.cli import main
from trex_bench.core.types import DemoSet, Episode
from trex_bench.reward.net import RewardNet, load_model, save_model
from trex_bench.reward.ranking import from_human_labels


@pytest.fixture
def model_dir(tmp_path):
    torch.manual_seed(0)
    return save_model(RewardNet("breakout"), tmp_path / "model", {"profile": "paper", "method": "trex"})


def _poison(folder, value):
    from safetensors.torch import load_file, save_file

    w = load_file(str(folder / "model.safetensors"))
    k = sorted(w)[0]
    w[k].view(-1)[0] = value
    save_file(w, str(folder / "model.safetensors"))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_reward_net_with_non_finite_weights_is_refused(model_dir, tmp_path, capsys, value):
    _poison(model_dir, value)
    with pytest.raises(ValueError, match="non-finite weights") as e:
        load_model(model_dir)
    assert "\n" not in str(e.value) and str(model_dir) in str(e.value)
    assert main(["rl", "train", "breakout", "--reward", str(model_dir), "--budget", "smoke", "--seed", "0",
                 "--out", str(tmp_path / "agent"), "--no-progress"]) == 2
    assert "non-finite weights" in capsys.readouterr().err and not (tmp_path / "agent").exists()


@pytest.mark.parametrize("card", ["[1, 2]", '{"kind": "reward_model", "arch": "trex", "ensemble_size": 1}'])
def test_malformed_reward_card_is_one_line(model_dir, card):
    (model_dir / "card.json").write_text(card)
    with pytest.raises(ValueError, match="card.json") as e:
        load_model(model_dir)
    assert "\n" not in str(e.value)


def _ep(checkpoint):
    r = np.zeros(5, np.float32)
    r[0] = checkpoint
    return Episode(0, np.zeros(5, np.uint8), r, np.array([0]), np.array([0], np.uint64), 0.0, checkpoint)


def _ds(*checkpoints):
    return DemoSet("breakout", "paper", {}, "test", tuple(_ep(c) for c in checkpoints))


def test_human_labels_report_dropped_rows(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("A,B,label\n100,200,1\n200,300,1\n100,900,1\n950,300,0\n")
    with pytest.warns(UserWarning, match=r"dropped 2 of 4 rows name checkpoints not in the demo set \(900, 950\)"):
        r = from_human_labels(_ds(100, 200, 300), labels)
    assert len(r.pairs) == 2
    ok = tmp_path / "ok.csv"
    ok.write_text("A,B,label\n100,200,1\n200,300,1\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing dropped: no warning
        assert len(from_human_labels(_ds(100, 200, 300), ok).pairs) == 2

def test_human_labels_with_too_few_usable_pairs_are_refused(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("A,B,label\n100,200,1\n100,900,1\n800,900,0\n")
    with pytest.raises(ValueError, match=r"only 1 usable pair .*2 of 3 rows name checkpoints not in the demo set"):
        from_human_labels(_ds(100, 200), labels)


@pytest.mark.parametrize("make", [lambda p: p.mkdir(), lambda p: p.write_bytes(b"A,B,label\n\xff,1,1\n")],
                         ids=["a-directory", "not-utf8"])
def test_bad_labels_file_is_one_line(tmp_path, make):
    labels = tmp_path / "labels.csv"
    make(labels)
    with pytest.raises(ValueError, match="labels.csv"):
        from_human_labels(_ds(100, 200), labels)


def test_degradation_validates_the_reference_before_writing(tmp_path, capsys):
    from trex_bench.demos.store import save_demos

    eps = [Episode(0, np.zeros(3, np.uint8), np.array([0, e, 0], np.float32), np.array([0]), np.array([0], np.uint64),
                   noise) for noise, e in [(0.0, 3), (0.5, 1), (1.0, 0)]]
    from trex_bench.core.envs import get_profile

    demos = save_demos(DemoSet("breakout", "paper", get_profile("paper").settings(), "test", tuple(eps)), tmp_path / "set")
    bad = tmp_path / "bad.csv"
    bad.write_text("0.5, 1, x\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["demos", "degradation", str(demos), "--out", str(tmp_path / "P"), "--reference", str(bad)]) == 2
    assert "bad.csv" in capsys.readouterr().err
    assert not (tmp_path / "P.csv").exists() and not (tmp_path / "P.png").exists()


def _parsers(parser, path=("trex-bench",)):
    """Every (command path, parser) of the CLI, the top level included."""
    import argparse

    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def test_every_help_has_an_example_whose_committed_paths_exist():
    """Found 2026-12-01: `reward train --help` showed --demos demos/breakout/scripted, a folder that never existed,
    and four command groups had no example."""
    import re
    from pathlib import Path

    from trex_bench.cli import build_parser

    root = Path(__file__).resolve().parents[2]
    for path, parser in _parsers(build_parser()):
        text = f"{parser.description or ''} {parser.epilog or ''}"
        assert "Example" in text, f"{' '.join(path)} --help has no example"
        for ref in re.findall(r"\b(demos/[\w./-]+|results/[\w./-]+\.\w+)", text):
            if not ref.startswith("results/plots"):  # an --out of the example, made by it
                assert (root / ref).exists(), f"{' '.join(path)} --help names {ref}, which does not exist"


def test_config_report_inputs_are_one_line_errors(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    assert main(["pipeline", "--config", str(missing)]) == 2
    assert f"config file {missing} does not exist" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text('{"a": 1}')
    assert main(["pipeline", "--config", str(other)]) == 2
    assert "not an experiment config" in capsys.readouterr().err
    out = tmp_path / "report"
    assert main(["report", "--games", "foo", "--out", str(out)]) == 2
    assert "unknown game 'foo'" in capsys.readouterr().err
    assert main(["report", "--runs", str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "is not a folder of run folders" in capsys.readouterr().err and not out.exists()
