"""The labeling page: the one label format (atomic appends, first answer wins, validation), clip pairs rendered from
exact replay, the request handler without a browser, every bad input as a one-line error, T-REX trained on the
page's answers, and the page itself driven in headless Chromium over the DevTools pipe."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import threading
import urllib.error
import urllib.request
from http import HTTPStatus
from pathlib import Path

import numpy as np
import pytest
from cdp import Browser  # tests/ is on sys.path (pytest prepend mode), as for `fakes`

from trex_bench.analysis.browser import find_chromium
from trex_bench.cli import main
from trex_bench.core.errors import ConfigError, DataError
from trex_bench.core.types import DemoSet, Episode
from trex_bench.label.clips import clip_grid, make_pairs, sample_clip_pairs
from trex_bench.label.server import LabelApp, find_pairs_folder, make_server
from trex_bench.reward.clip_pairs import Clip, ClipPair, PairSet, read_pairs, render_clip, write_pairs
from trex_bench.reward.labels import (
    COLUMNS,
    Label,
    append_label,
    append_labels,
    check_labels,
    episode_index,
    label_format,
    labelled_snippet_pairs,
    read_labels,
    snippet_pairs,
)

N_PAIRS = 6


def _label(pair: int, answer: str = "left", left=(0, 0, 0, 25), right=(1, 0, 25, 25)) -> Label:
    return Label(pair, Clip(*left), Clip(*right), "ann", answer, 1700000000.0 + pair)


def _pairset(n: int = 3, game: str = "breakout", source: dict | None = None) -> PairSet:
    pairs = tuple(
        ClipPair(Clip(0, 0, 25 * k, 25), Clip(1, 0, 25 * k, 25), f"clips/a{k}.gif", f"clips/b{k}.gif")
        for k in range(n)
    )
    return PairSet(game, source or {"kind": "demos", "path": "d", "content_hash": "x"}, pairs)


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# -- the label format ------------------------------------------------------------------------------------------------


def test_answers_append_as_whole_lines_and_read_back(tmp_path):
    path = tmp_path / "labels.csv"
    for k, answer in enumerate(("left", "right", "equal", "skip")):
        assert append_label(path, _label(k, answer)) == (_label(k, answer), True)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS) and len(lines) == 5
    assert lines[0] == ("pair,left_seed,left_reset,left_start,left_length,right_seed,right_reset,right_start,"
                        "right_length,labeler,answer,unix_time")
    assert lines[1] == "0,0,0,0,25,1,0,25,25,ann,left,1700000000.000"
    assert read_labels(path) == tuple(_label(k, a) for k, a in enumerate(("left", "right", "equal", "skip")))
    assert not path.with_name("labels.csv.tmp").exists()


def test_a_second_answer_to_a_pair_is_a_no_op(tmp_path):
    path = tmp_path / "labels.csv"
    append_label(path, _label(0, "left"))
    before = path.read_bytes()
    stands, written = append_label(path, _label(0, "right"))
    assert (stands.answer, written) == ("left", False)
    assert path.read_bytes() == before
    # a batch (the synthetic oracle's) writes each new pair once, in one write; the first answer of each stands
    got = append_labels(path, [_label(1, "right"), _label(0, "right"), _label(1, "left"), _label(2, "skip")])
    assert [(lab.pair, lab.answer, w) for lab, w in got] == [(1, "right", True), (0, "left", False),
                                                             (1, "right", False), (2, "skip", True)]
    assert [(lab.pair, lab.answer) for lab in read_labels(path)] == [(0, "left"), (1, "right"), (2, "skip")]


def test_concurrent_writers_keep_every_answer_exactly_once(tmp_path):
    """16 threads, each with its own file lock, answer 40 pairs twice over with different answers."""
    path = tmp_path / "labels.csv"
    results: list[tuple[Label, bool]] = []

    def work(t: int) -> None:
        for k in range(t % 2, 40, 2):
            results.append(append_label(path, _label(k, ("left", "right")[t % 2 ^ (t // 8)])))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    text = path.read_text()
    assert text.endswith("\n") and len(text.splitlines()) == 41
    labels = read_labels(path)
    assert sorted(lab.pair for lab in labels) == list(range(40))
    assert sum(written for _, written in results) == 40
    first = {lab.pair: lab.answer for lab in labels}
    assert all(stands.answer == first[stands.pair] for stands, _ in results)  # every caller was told what stands


def test_a_cut_off_last_line_was_never_an_answer(tmp_path):
    path = tmp_path / "labels.csv"
    append_label(path, _label(0))
    whole = path.read_bytes()
    path.write_bytes(whole + b"1,0,0,0,25,1,0,2")  # a crash in the middle of writing pair 1
    assert [lab.pair for lab in read_labels(path)] == [0]
    append_label(path, _label(2))
    assert [lab.pair for lab in read_labels(path)] == [0, 2] and path.read_bytes() == whole + _line(_label(2))
    # a whole last row without its line break (a hand edit) is an answer and stays one
    path.write_bytes(path.read_bytes() + _line(_label(3))[:-1])
    append_label(path, _label(4))
    assert [lab.pair for lab in read_labels(path)] == [0, 2, 3, 4]


def test_a_first_write_cut_in_its_header_is_an_empty_file(tmp_path):
    """The first write puts the header and the first row in one ``write``: cut inside the header, the file locked the
    page out (every read refused it as another format) until edited by hand."""
    path = tmp_path / "labels.csv"
    path.write_bytes(",".join(COLUMNS)[:11].encode())
    assert read_labels(path) == ()
    append_label(path, _label(0))
    assert [lab.pair for lab in read_labels(path)] == [0] and path.read_text().startswith(",".join(COLUMNS) + "\n")


def _line(label: Label) -> bytes:
    return (",".join(label.row()) + "\n").encode()


@pytest.mark.parametrize(
    "text, match",
    [
        ("A,B,label,scoreA,scoreB\n1,2,0,3,4\n", "not a labels CSV of this project"),
        (",".join(COLUMNS[:3]) + ",left_episode\n", "not a labels CSV of this project"),  # the old page format
        (",".join(COLUMNS) + "\n0,0,0,0,25,1,0,0,25,ann,better,1.0\n1,0,0,0,25,1,0,0,25,ann,left,1\n",
         r"labels.csv:2: answer must be one of left, right, equal, skip"),
        (",".join(COLUMNS) + "\n0,0,0,0,25,1,0,0,25,ann,left\n0,0,0,0,25,1,0,0,25,ann,left,1\n",
         r"labels.csv:2: 11 fields, expected 12"),
        (",".join(COLUMNS) + "\n0,-1,0,0,25,1,0,0,25,ann,left,1.0\n", "seed, reset, start >= 0"),
    ],
)
def test_bad_label_files_are_one_line_errors(tmp_path, text, match):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=match) as e:
        read_labels(path)
    assert "\n" not in str(e.value)
    with pytest.raises(DataError):  # and nothing is appended to a file that cannot be read
        append_label(path, _label(7))
    assert path.read_text() == text


def test_a_label_is_one_line_of_known_values():
    with pytest.raises(ConfigError, match="labeler"):
        Label(0, Clip(0, 0, 0, 25), Clip(1, 0, 0, 25), "ann\nevil", "left", 1.0)
    with pytest.raises(ConfigError, match="answer"):
        _label(0, "better")
    with pytest.raises(ConfigError, match="integer"):
        Clip(0, 0, 1.5, 25)  # type: ignore[arg-type]


def test_labels_are_checked_against_their_pairs(tmp_path):
    pairs = _pairset(3)
    ok = (Label(1, Clip(0, 0, 25, 25), Clip(1, 0, 25, 25), "ann", "left", 1.0),)
    check_labels(ok, pairs, "labels.csv")
    with pytest.raises(DataError, match="pair 5 is not among the 3 breakout pairs"):
        check_labels((_label(5),), pairs, "labels.csv")
    with pytest.raises(DataError, match=r"pair 0 names clips \(0, 0, 0, 25\) and \(1, 0, 25, 25\), but the pairs"):
        check_labels((_label(0),), pairs, "labels.csv")


def test_pairs_file_round_trip_and_refusals(tmp_path):
    write_pairs(tmp_path, _pairset(2))
    assert read_pairs(tmp_path) == _pairset(2)
    with pytest.raises(DataError, match="not a pairs folder"):
        read_pairs(tmp_path / "nothing")
    d = json.loads((tmp_path / "pairs.json").read_text())
    assert d["pairs"][0]["left"] == {"seed": 0, "reset": 0, "start": 0, "length": 25, "file": "clips/a0.gif"}
    (tmp_path / "pairs.json").write_text(json.dumps(d | {"schema": 1}))  # the old (episode, start, length) pairs
    with pytest.raises(DataError, match="not a pairs file of schema 2"):
        read_pairs(tmp_path)
    online = PairSet("breakout", {"kind": "online"}, (ClipPair(Clip(3, 1, 9, 25), Clip(4, 0, 1, 25), None, None,
                                                               step=64, p_right=0.25, disagreement=0.01),))
    write_pairs(tmp_path, online)
    assert read_pairs(tmp_path) == online  # the online loop's queries: the same schema, no GIF for the oracle's
    d["pairs"][0]["left"]["file"] = "../../etc/passwd"
    (tmp_path / "pairs.json").write_text(json.dumps(d))
    with pytest.raises(DataError, match="relative path inside the pairs folder"):
        read_pairs(tmp_path)


def test_label_format_tells_the_page_csv_from_the_mturk_csv(tmp_path):
    page, mturk, other = tmp_path / "page.csv", tmp_path / "mturk.csv", tmp_path / "other.csv"
    append_label(page, _label(0))
    mturk.write_text("A,B,label,scoreA,scoreB\n50,100,1,3,9\n")
    other.write_text("x,y\n1,2\n")
    assert (label_format(page), label_format(mturk)) == ("clips", "mturk")
    with pytest.raises(ConfigError, match="neither a labels CSV"):
        label_format(other)
    from trex_bench.reward.ranking import from_human_labels

    ds = _demoset(2)
    with pytest.raises(ConfigError, match="clip preferences, not episode preferences"):
        from_human_labels(ds, page)


def test_answers_become_snippet_pairs_over_exactly_the_labelled_clips():
    labels = (_label(0, "left"), _label(1, "right", left=(2, 0, 50, 25), right=(0, 0, 75, 25)), _label(2, "equal"),
              _label(3, "skip"))
    episode_of = {(0, 0): 0, (1, 0): 1, (2, 0): 2}  # (seed, reset) → episode
    sp = snippet_pairs(labels, episode_of)
    assert sp.ep_a.tolist() == [0, 2] and sp.start_a.tolist() == [0, 50]
    assert sp.ep_b.tolist() == [1, 0] and sp.start_b.tolist() == [25, 75]
    assert sp.length.tolist() == [25, 25] and sp.stride == 1 and sp.label.tolist() == [0, 1]  # 1: right preferred
    assert snippet_pairs(labels[:1], {(0, 0): 7, (1, 0): 3}).ep_a.tolist() == [7]  # the id, not a position, counts
    with pytest.raises(DataError, match="none of the 2 answers prefers a clip"):
        snippet_pairs((_label(0, "equal"), _label(1, "skip")), episode_of)
    with pytest.raises(DataError, match=r"clip \(1, 0, 25, 25\) names no episode"):
        snippet_pairs(labels[:1], {(0, 0): 0})


def _demoset(n: int, length: int = 99, seed: int = 0) -> DemoSet:
    eps = tuple(
        Episode(seed + k, np.zeros(length, np.uint8), np.zeros(length, np.float32), np.array([0]),
                np.array([k], np.uint64))
        for k in range(n)
    )
    return DemoSet("breakout", "paper", {}, "test", eps)


def test_labelled_snippet_pairs_refuse_labels_of_another_demo_set(tmp_path):
    ds = _demoset(2)
    write_pairs(tmp_path, _pairset(2, source={"kind": "demos", "path": "d", "content_hash": ds.content_hash()}))
    path = tmp_path / "labels.csv"
    append_label(path, Label(1, Clip(0, 0, 25, 25), Clip(1, 0, 25, 25), "ann", "right", 1.0))
    assert labelled_snippet_pairs(ds, path).label.tolist() == [1]
    with pytest.raises(DataError, match="was made from demo set d .* not from this one"):
        labelled_snippet_pairs(_demoset(2, seed=5), path)
    with pytest.raises(DataError, match="holds breakout pairs, but the demo set is pong"):  # another game's folder
        labelled_snippet_pairs(DemoSet("pong", "paper", {}, "t", ds.episodes), path)
    short = _demoset(2, length=30)
    write_pairs(tmp_path, _pairset(2, source={"kind": "demos", "path": "d", "content_hash": short.content_hash()}))
    with pytest.raises(DataError, match=r"names clip \(0, 0, 25, 25\), which is no clip of the demo set"):
        labelled_snippet_pairs(short, path)
    twice = DemoSet("breakout", "paper", {}, "test", (ds.episodes[0], ds.episodes[0]))
    with pytest.raises(DataError, match="episodes 0 and 1 are both game 0 of seed 0"):
        episode_index(twice, "d")
    write_pairs(tmp_path, PairSet("breakout", {"kind": "online"}, _pairset(2).pairs))
    with pytest.raises(DataError, match="online loop's queries"):
        labelled_snippet_pairs(ds, path)
    (tmp_path / "pairs.json").unlink()  # labels are read in their pairs folder, never alone
    with pytest.raises(DataError, match="no pairs.json beside it"):
        labelled_snippet_pairs(ds, path)


# -- clip pairs ------------------------------------------------------------------------------------------------------


def test_clip_pairs_are_distinct_pairs_of_distinct_clips_in_range():
    lengths = np.array([99, 24, 60])  # 4, 1 and 2 clips of 25 observations
    episode, start = clip_grid(lengths, 25)
    assert list(zip(episode.tolist(), start.tolist())) == [(0, 0), (0, 25), (0, 50), (0, 75), (1, 0), (2, 0), (2, 25)]
    everything = sample_clip_pairs(lengths, 21, 25, np.random.default_rng(0))  # all C(7, 2) pairs of (episode, start)
    keys = {frozenset((a, b)) for a, b in everything}
    assert len(keys) == 21 and all(a != b for a, b in everything)
    assert all(start + 25 <= lengths[episode] + 1 for pair in everything for episode, start in pair)
    assert {a[0] for a, _ in everything} != {0}  # sides are drawn, not fixed by index order
    again = sample_clip_pairs(lengths, 5, 25, np.random.default_rng(3))
    assert again == sample_clip_pairs(lengths, 5, 25, np.random.default_rng(3))
    with pytest.raises(ConfigError, match="--n 22 is more than the 21 distinct pairs of the 7 clips"):
        sample_clip_pairs(lengths, 22, 25, np.random.default_rng(0))
    big = sample_clip_pairs(np.full(400, 10_000), 1000, 25, np.random.default_rng(0))  # 16k clips: no enumeration
    assert len({frozenset(p) for p in big}) == 1000


def test_a_clip_renders_as_a_looping_gif_of_its_frames(tmp_path):
    from PIL import Image

    frames = np.stack([np.full((84, 84), 10 * k, np.uint8) for k in range(5)])
    render_clip(frames, tmp_path / "c.gif", frame_ms=70)
    with Image.open(tmp_path / "c.gif") as im:
        assert im.size == (252, 252) and im.n_frames == 5 and im.info["loop"] == 0 and im.info["duration"] == 70
        im.seek(3)
        assert np.asarray(im.convert("L"))[100, 100] == 30


def _prefix(ds: DemoSet, steps: int, episodes: int) -> DemoSet:
    """The first ``steps`` steps of the first ``episodes`` episodes: a prefix replays to the same frames."""
    from dataclasses import replace

    def cut(ep: Episode) -> Episode:
        keep = ep.hash_steps <= steps
        return replace(ep, actions=ep.actions[:steps], rewards=ep.rewards[:steps], hash_steps=ep.hash_steps[keep],
                       frame_hashes=ep.frame_hashes[keep], truncated=True)

    return replace(ds, episodes=tuple(cut(e) for e in ds.episodes[:episodes]))


@pytest.fixture(scope="module")
def small_demos(breakout_demos):
    """100 steps of 3 scripted Breakout episodes: 4× faster to replay than the whole set."""
    return _prefix(breakout_demos, 100, 3)


@pytest.fixture(scope="module")
def demos_dir(small_demos, tmp_path_factory):
    from trex_bench.demos.store import save_demos

    return save_demos(small_demos, tmp_path_factory.mktemp("label") / "demos")


@pytest.fixture(scope="module")
def pairs_dir(demos_dir):
    out = demos_dir.parent / "pairs"
    make_pairs("breakout", demos_dir, out, N_PAIRS, np.random.default_rng(0), created_by="test")
    return out


@pytest.fixture
def fresh_pairs(pairs_dir, tmp_path):
    """A copy of the pairs folder without answers."""
    return Path(shutil.copytree(pairs_dir, tmp_path / "pairs"))


def test_pairs_folder_holds_indices_and_clips_of_the_replayed_frames(pairs_dir, demos_dir, small_demos):
    from PIL import Image

    from trex_bench.demos.replay import replay

    pairs = read_pairs(pairs_dir)
    assert pairs.game == "breakout" and len(pairs.pairs) == N_PAIRS
    assert pairs.source == {"kind": "demos", "path": str(demos_dir), "content_hash": small_demos.content_hash()}
    p = pairs.pairs[0]
    episode = episode_index(small_demos, demos_dir)[p.left.seed, p.left.reset]  # the id names the episode
    assert p.left_file == f"clips/s{p.left.seed}_r{p.left.reset}_t{p.left.start}_l25.gif"
    frames = replay(small_demos.episodes[episode], "breakout")
    with Image.open(pairs_dir / p.left_file) as im:
        assert im.n_frames <= p.left.length  # Pillow merges identical consecutive frames into one longer frame
        shown = np.asarray(im.convert("L"))[::3, ::3]
    np.testing.assert_array_equal(shown, frames[p.left.start])
    assert sorted(f.name for f in (pairs_dir / "clips").iterdir()) == sorted(
        {Path(f).name for q in pairs.pairs for f in (q.left_file, q.right_file)}
    )


def test_label_pairs_command(demos_dir, tmp_path, capsys):
    out = tmp_path / "p"
    code, stdout, _ = _run(capsys, "label", "pairs", "breakout", "--demos", str(demos_dir), "--n", "3", "--length",
                           "20", "--seed", "1", "--out", str(out), "--no-progress")
    assert code == 0 and "wrote 3 pairs of" in stdout and f"trex-bench label serve {out}" in stdout
    assert all(p.left.length == 20 for p in read_pairs(out).pairs)


@pytest.mark.parametrize(
    "argv, match",
    [
        (["pong", "--n", "2"], "breakout demos"),
        (["breakout", "--n", "100000"], "is more than the .* distinct pairs"),
        (["breakout", "--n", "2", "--length", "102"], "is more than the 0 distinct pairs of the 0 clips"),
    ],
)
def test_label_pairs_bad_input(demos_dir, tmp_path, capsys, argv, match):
    out = tmp_path / "p"
    code, _, err = _run(capsys, "label", "pairs", argv[0], "--demos", str(demos_dir), *argv[1:], "--out", str(out))
    assert code == 2 and err.count("\n") == 1 and re.search(match, err), err
    assert not out.exists()


def test_label_pairs_never_writes_over_a_folder_or_into_a_file(demos_dir, tmp_path, capsys):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "labels.csv").write_text("answers\n")
    code, _, err = _run(capsys, "label", "pairs", "breakout", "--demos", str(demos_dir), "--n", "2", "--out", str(busy))
    assert code == 2 and "is never written over" in err and (busy / "labels.csv").read_text() == "answers\n"
    a_file = tmp_path / "file"
    a_file.write_text("")
    code, _, err = _run(capsys, "label", "pairs", "breakout", "--demos", str(demos_dir), "--n", "2", "--out",
                        str(a_file / "sub"))
    assert code == 2 and err.startswith("trex-bench: error: cannot write") and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "file"]  # no temp folder left behind


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_label_pairs_and_serve_refuse_a_read_only_folder(demos_dir, fresh_pairs, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    fresh_pairs.chmod(0o555)
    try:
        code, _, err = _run(capsys, "label", "pairs", "breakout", "--demos", str(demos_dir), "--n", "2", "--out",
                            str(ro / "p"))
        assert code == 2 and "cannot write" in err
        code, _, err = _run(capsys, "label", "serve", str(fresh_pairs), "--port", "0")
        assert code == 2 and "cannot write answers to" in err and err.count("\n") == 1
    finally:
        ro.chmod(0o755)
        fresh_pairs.chmod(0o755)


# -- the request handler, without a browser -------------------------------------------------------------------------


def _body(app: LabelApp, pair: int, answer: str) -> dict:
    p = app.pairs().pairs[pair]
    return {"pair": pair, "answer": answer, "left": list(p.left.as_tuple()), "right": list(p.right.as_tuple())}


def test_the_app_serves_the_first_unanswered_pair_and_records_answers(fresh_pairs):
    app = LabelApp(fresh_pairs, "ann", clock=lambda: 123.0)
    s = app.state()
    assert (s["game"], s["total"], s["labelled"], s["next"]["pair"]) == ("breakout", N_PAIRS, 0, 0)
    assert s["next"]["left"]["url"] == "clip/0/left"
    status, reply = app.answer(_body(app, 0, "left"))
    assert status == HTTPStatus.OK and reply["recorded"] and reply["state"]["next"]["pair"] == 1
    status, reply = app.answer(_body(app, 2, "skip"))  # out of order: pair 1 is still the next one
    assert reply["state"]["next"]["pair"] == 1 and reply["state"]["labelled"] == 2
    status, reply = app.answer(_body(app, 0, "right"))
    assert status == HTTPStatus.OK and not reply["recorded"] and reply["answer"] == "left"
    assert "first answer stands" in reply["message"]
    rows = read_labels(fresh_pairs / "labels.csv")
    assert [(r.pair, r.answer, r.labeler, r.unix_time) for r in rows] == [(0, "left", "ann", 123.0), (2, "skip", "ann", 123.0)]
    assert LabelApp(fresh_pairs, "bob").state()["next"]["pair"] == 1  # a restart goes on where the answers stop
    assert app.clip(0, "left") == (fresh_pairs / app.pairs().pairs[0].left_file).resolve()
    assert app.clip(0, "middle") is None and app.clip(N_PAIRS, "left") is None


@pytest.mark.parametrize(
    "body, status, match",
    [
        ([1, 2], HTTPStatus.BAD_REQUEST, "expected a JSON object"),
        ({"pair": 0, "answer": "left"}, HTTPStatus.BAD_REQUEST, "expected a JSON object"),
        ({"pair": 99, "answer": "left", "left": [], "right": []}, HTTPStatus.BAD_REQUEST, "no pair 99"),
        ({"pair": True, "answer": "left", "left": [], "right": []}, HTTPStatus.BAD_REQUEST, "no pair True"),
        ({"pair": 0, "answer": "better", "left": [], "right": []}, HTTPStatus.BAD_REQUEST, "answer must be one of"),
        ({"pair": 0, "answer": "left", "left": [0, 0, 25], "right": [9, 9, 9]}, HTTPStatus.CONFLICT, "reload"),
    ],
)
def test_malformed_answers_are_refused_and_nothing_is_written(fresh_pairs, body, status, match):
    app = LabelApp(fresh_pairs, "ann")
    got, reply = app.answer(body)
    assert got == status and match in reply["error"]
    assert not (fresh_pairs / "labels.csv").exists()


def test_the_page_follows_a_pairs_file_that_grows(fresh_pairs):
    app = LabelApp(fresh_pairs, "ann")
    for k in range(N_PAIRS):
        app.answer(_body(app, k, "equal"))
    assert app.state()["next"] is None and app.state()["labelled"] == N_PAIRS
    grown = read_pairs(fresh_pairs)
    write_pairs(fresh_pairs, PairSet(grown.game, grown.source, grown.pairs + grown.pairs[:1]))
    assert app.state()["next"]["pair"] == N_PAIRS and app.state()["total"] == N_PAIRS + 1


def test_serve_refuses_labels_of_other_pairs(fresh_pairs, capsys):
    append_label(fresh_pairs / "labels.csv", _label(N_PAIRS + 3))
    code, _, err = _run(capsys, "label", "serve", str(fresh_pairs), "--port", "0")
    assert code == 2 and f"pair {N_PAIRS + 3} is not among the {N_PAIRS} breakout pairs" in err
    assert err.count("\n") == 1
    (fresh_pairs / "labels.csv").write_text(",".join(COLUMNS) + "\n0,9,9,0,25,1,0,0,25,ann,left,1.0\n")  # unknown clips
    code, _, err = _run(capsys, "label", "serve", str(fresh_pairs), "--port", "0")
    assert code == 2 and "pair 0 names clips (9, 9, 0, 25) and (1, 0, 0, 25), but the pairs folder has" in err
    code, _, err = _run(capsys, "label", "serve", str(fresh_pairs.parent), "--port", "0", "--labeler", "a\tb")
    assert code == 2 and "labeler must be" in err
    code, _, err = _run(capsys, "label", "serve", str(fresh_pairs / "clips"), "--port", "0")
    assert code == 2 and "holds no pairs.json" in err


def test_find_pairs_folder_looks_inside_a_run_folder(fresh_pairs, tmp_path):
    assert find_pairs_folder(fresh_pairs) == fresh_pairs
    assert find_pairs_folder(tmp_path) == fresh_pairs
    shutil.copytree(fresh_pairs, tmp_path / "second")
    with pytest.raises(DataError, match="holds 2 pairs folders"):
        find_pairs_folder(tmp_path)


@pytest.fixture
def served(fresh_pairs):
    """The page's server on a free port, serving in a thread: (base URL, pairs folder)."""
    server = make_server(LabelApp(fresh_pairs, "ann"), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", fresh_pairs, server
    server.shutdown()
    server.server_close()
    thread.join(5)


def _http(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_the_http_layer(served):
    base, folder, _ = served
    status, headers, page = _http(base + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"Left is better" in page
    assert b"http" not in page.replace(b"http-equiv", b"")  # no CDN, nothing fetched from elsewhere
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    status, _, body = _http(base + "/api/state")
    state = json.loads(body)
    status, headers, gif = _http(f"{base}/{state['next']['left']['url']}")
    assert status == 200 and headers["Content-Type"] == "image/gif" and gif.startswith(b"GIF89a")
    assert _http(base + "/clip/99/left")[0] == 404 and _http(base + "/../pairs.json")[0] == 404
    assert _http(base + "/favicon.ico")[0] == 204
    good = json.dumps({"pair": 0, "answer": "right", "left": state["next"]["left"]["clip"],
                       "right": state["next"]["right"]["clip"]}).encode()
    assert _http(base + "/api/label", good, {"Content-Type": "text/plain"})[0] == 415  # what a cross-site form sends
    assert _http(base + "/api/label", b"{" * 5000, {"Content-Type": "application/json"})[0] == 413
    status, _, body = _http(base + "/api/label", b"{nope", {"Content-Type": "application/json"})
    assert status == 400 and "not JSON" in json.loads(body)["error"]
    assert _http(base + "/api/state", headers={"Host": "evil.example:80"})[0] == 403  # DNS rebinding
    assert not (folder / "labels.csv").exists()
    status, _, body = _http(base + "/api/label", good, {"Content-Type": "application/json"})
    assert status == 200 and json.loads(body)["recorded"]
    status, _, body = _http(base + "/api/label", good, {"Content-Type": "application/json"})
    assert status == 200 and not json.loads(body)["recorded"]
    assert [(r.pair, r.answer) for r in read_labels(folder / "labels.csv")] == [(0, "right")]


def test_a_port_in_use_is_a_one_line_error(fresh_pairs, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} on 127.0.0.1 is in use"):
            make_server(LabelApp(fresh_pairs, "ann"), "127.0.0.1", port)
        code, _, err = _run(capsys, "label", "serve", str(fresh_pairs), "--port", str(port))
    assert code == 2 and "is in use; pass another --port" in err and err.count("\n") == 1


# -- T-REX on the page's answers -------------------------------------------------------------------------------------


def test_reward_train_learns_from_the_pages_labels(fresh_pairs, demos_dir, breakout_demos, tmp_path):
    from trex_bench.demos.store import save_demos
    from trex_bench.reward.build import train_command
    from trex_bench.reward.config import TrainConfig

    app = LabelApp(fresh_pairs, "ann")
    for k, answer in enumerate(("left", "right", "left", "equal", "right", "skip")):
        app.answer(_body(app, k, answer))
    cfg = TrainConfig(n_pairs=40, batch_pairs=8, passes=1.0, max_steps=3, eval_every=2, lr=1e-4)
    out = train_command("breakout", demos_dir, tmp_path / "model", ranking="human",
                        human_labels=fresh_pairs / "labels.csv", config=cfg, budget="smoke", progress=False,
                        cache_dir=tmp_path / "cache")
    card = json.loads((out / "card.json").read_text())
    assert card["ranking"] | {"human_labels": None} == dict(source="human", n_pairs=4, human_labels=None,
                                                             label_format="clips")
    assert card["metrics"]["n_train_pairs"] + card["metrics"]["n_val_pairs"] >= 36  # resampled to the recipe's n_pairs
    other = save_demos(_prefix(breakout_demos, 90, 3), tmp_path / "other-demos")
    with pytest.raises(DataError, match="was made from demo set .* not from this one"):
        train_command("breakout", other, tmp_path / "m2", ranking="human", human_labels=fresh_pairs / "labels.csv",
                      config=cfg, budget="smoke", progress=False, cache_dir=tmp_path / "cache")


# -- the page in a real browser --------------------------------------------------------------------------------------


def test_the_page_in_headless_chromium(served):
    """Both clips decode; answers by a mouse click and by keys; a reload resumes at the first unanswered pair; the
    CSV holds exactly the three answers. Skips without Chromium locally; under CI=true a missing browser fails."""
    chromium = find_chromium()
    if chromium is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but no chromium on PATH: .ci/run must `make install-browser` before `make test`")
        pytest.skip("no chromium on PATH (make install-browser)")
    base, folder, _ = served
    both_shown = ("document.body.dataset.pair === '{}' && ['left', 'right'].every(id => "
                  "document.getElementById(id).complete && document.getElementById(id).naturalWidth > 0)")
    with Browser(chromium) as b:
        b.open(base + "/")
        b.wait_for(both_shown.format(0))
        assert b.eval("document.getElementById('left').naturalWidth") == 252
        assert b.eval("document.getElementById('counter').textContent") == f"0 of {N_PAIRS} labelled"
        b.click("#answer-left")  # a real mouse click on the button
        b.wait_for(both_shown.format(1))
        b.key("ArrowRight", "ArrowRight", 39)
        b.wait_for(both_shown.format(2))
        b.send("Page.reload", session=True)
        b.wait_for(both_shown.format(2) + f" && document.getElementById('counter').textContent === '2 of {N_PAIRS} labelled'")
        b.key("=", "Equal", 187)
        b.wait_for(both_shown.format(3))
        assert b.eval("document.getElementById('counter').textContent") == f"3 of {N_PAIRS} labelled"
        assert b.console_errors() == []
    pairs = read_pairs(folder).pairs
    rows = read_labels(folder / "labels.csv")
    assert [(r.pair, r.answer) for r in rows] == [(0, "left"), (1, "right"), (2, "equal")]
    assert all((r.left, r.right) == (pairs[r.pair].left, pairs[r.pair].right) for r in rows)
    assert len((folder / "labels.csv").read_text().splitlines()) == 4


def test_a_pipeline_on_the_pages_labels_needs_no_checkpoints(fresh_pairs, demos_dir):
    """The MTurk CSV names checkpoints; the page's labels name clips of any demo set (here: no checkpoint indices)."""
    from trex_bench.experiment.options import PipelineConfig
    from trex_bench.experiment.pipeline import check_inputs

    app = LabelApp(fresh_pairs, "ann")
    app.answer(_body(app, 0, "left"))
    page = PipelineConfig(game="breakout", method="trex", budget="smoke", seed=0, demos=demos_dir, ranking="human",
                          human_labels=fresh_pairs / "labels.csv")
    assert check_inputs(page.resolve())[0] == demos_dir
    mturk = fresh_pairs / "mturk.csv"
    mturk.write_text("A,B,label,scoreA,scoreB\n1,2,1,3,4\n")
    with pytest.raises(ConfigError, match="needs checkpoint indices"):
        check_inputs(PipelineConfig(**(vars(page) | {"human_labels": mturk})).resolve())


def test_serve_refuses_a_folder_it_cannot_write(fresh_pairs, capsys, monkeypatch):
    """As root (CI) no folder is read-only, so the writability check is made to answer no."""
    monkeypatch.setattr("trex_bench.label.server.os.access", lambda *a, **k: False)
    code, _, err = _run(capsys, "label", "serve", str(fresh_pairs), "--port", "0")
    assert code == 2 and f"cannot write answers to {fresh_pairs / 'labels.csv'}" in err and err.count("\n") == 1


def test_an_answer_that_cannot_be_saved_says_so(served):
    base, folder, server = served
    body = _body(server.app, 0, "left")
    (folder / "labels.csv").mkdir()  # the labels file became unusable while the page was open
    status, _, reply = _http(base + "/api/label", json.dumps(body).encode(), {"Content-Type": "application/json"})
    assert status == 500 and json.loads(reply)["error"].startswith("not saved: ")
    status, _, reply = _http(base + "/api/state")
    assert status == 500 and "is a folder, not a CSV file" in json.loads(reply)["error"]
