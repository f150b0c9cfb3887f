"""Property-based tests (hypothesis) over the demo store and the snippet samplers (issue 16, "Deliver").

Demo store: a random corruption of a saved set (its manifest's structure, an episode file's arrays, or its bytes)
is either refused by ``load_demos`` with a ``DemoError`` (one line, naming a file of the set), or the set loads and
``verify_demos`` replays it to a verdict (or refuses it with a one-line ``ValueError``): never another exception,
never a hang. Snippet samplers: any arguments give a ``ValueError`` or pairs whose snippets all lie inside their
episodes, pair equal lengths, respect the ranking and (T-REX sampler) the progress prior.

Examples are few and derandomised (the same examples on every run) so the file runs in well under a minute.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from trex_bench.core.types import Ranking
from trex_bench.demos.replay import verify_demos
from trex_bench.demos.store import DemoError, load_demos, save_demos
from trex_bench.reward.snippets import sample_snippet_pairs, whole_trajectory_pairs

FAST = settings(
    max_examples=25, derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
REPLAYS = settings(FAST, max_examples=12)  # examples that load replay the set: ~1 s each


# -- demo store ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("copies")


@pytest.fixture(scope="module")
def saved_set(tmp_path_factory) -> Path:
    """Two short random Breakout episodes, saved once; each example corrupts a fresh copy."""
    from trex_bench.demos.collect import CollectConfig, collect
    from trex_bench.demos.policies import RandomPolicy

    ds = collect("breakout", RandomPolicy(4, np.random.default_rng(0)), CollectConfig(2, seed=3, max_steps=30),
                 progress=False)
    return save_demos(ds, tmp_path_factory.mktemp("prop") / "set")


def _load_then_verify(folder: Path) -> None:
    """The property: refused cleanly at load, or loaded and replayed to a verdict (or refused in one line)."""
    try:
        ds = load_demos(folder)
    except DemoError as e:
        msg = str(e)
        assert len(msg.splitlines()) == 1 and str(folder) in msg, msg
        event("refused at load")
        return
    try:
        results = verify_demos(ds, n_envs=2)
    except ValueError as e:  # e.g. an unknown game in the manifest, an action outside the game's action set
        assert len(str(e).splitlines()) == 1, str(e)
        event("refused at replay")
        return
    assert len(results) == len(ds.episodes)
    event("verified ok" if all(r.ok for r in results) else "verified: mismatch")


def _copy(folder: Path, scratch: Path) -> Path:
    """A fresh copy of the saved set for one example (the previous example's copy is removed)."""
    for old in scratch.iterdir():
        shutil.rmtree(old)
    dest = Path(tempfile.mkdtemp(prefix="ex-", dir=scratch)) / "set"
    shutil.copytree(folder, dest)
    return dest


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
FILE_NAMES = st.sampled_from(["ep_0001.npz", "ep_0009.npz", "../set/ep_0000.npz", "", ".", "manifest.json", "/etc/passwd"])


@st.composite
def manifest_edits(draw):
    """(path, new value or DELETE): a top-level key or a key of one episode entry, set to random JSON."""
    top = ["schema_version", "game", "profile", "profile_settings", "demonstrator", "versions", "content_hash",
           "episodes"]
    entry = ["file", "seed", "reset_index", "return", "length", "noise", "checkpoint", "truncated"]
    if draw(st.booleans()):
        path = (draw(st.sampled_from(top)),)
    else:
        path = ("episodes", draw(st.integers(0, 1)), draw(st.sampled_from(entry)))
    if path[-1] == "file":
        value = draw(FILE_NAMES | JSON)
    elif path[-1] == "game":
        value = draw(st.sampled_from(["pong", "breakout", "nonsense"]) | JSON)
    else:
        value = draw(JSON)
    return path, ("DELETE" if draw(st.integers(0, 4)) == 0 else value)


@REPLAYS
@given(edit=manifest_edits())
@pytest.mark.filterwarnings("ignore:.*recorded with ale-py")
def test_manifest_corruptions_are_refused_or_verify(saved_set, scratch, edit):
    folder = _copy(saved_set, scratch)
    m = json.loads((folder / "manifest.json").read_text())
    *parents, last = edit[0]
    node = m
    for key in parents:
        node = node[key]
    if edit[1] == "DELETE":
        node.pop(last, None)
    else:
        node[last] = edit[1]
    (folder / "manifest.json").write_text(json.dumps(m))
    _load_then_verify(folder)


ARRAY_KEYS = ["actions", "rewards", "seed", "reset_index", "noise", "checkpoint", "truncated", "hash_steps",
              "frame_hashes"]
ANY_ARRAY = hnp.arrays(
    st.sampled_from([np.uint8, np.int64, np.uint64, np.float32, np.float64, np.bool_]),
    hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=40),
)


@st.composite
def npz_edits(draw):
    """(key, array or DELETE): one array of one episode file replaced by any small array, by one of the same dtype
    and shape with other values (what loads, and reaches replay), or removed."""
    key = draw(st.sampled_from(ARRAY_KEYS))
    kind = draw(st.sampled_from(["any", "same-shape", "same-shape", "delete"]))
    return key, kind, draw(ANY_ARRAY), draw(st.randoms(use_true_random=False))


@REPLAYS
@given(edit=npz_edits(), which=st.integers(0, 1))
def test_episode_array_corruptions_are_refused_or_verify(saved_set, scratch, edit, which):
    key, kind, new, rnd = edit
    folder = _copy(saved_set, scratch)
    path = folder / f"ep_{which:04d}.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    old = arrays[key]
    if kind == "delete":
        del arrays[key]
    elif kind == "any":
        arrays[key] = new
    else:  # same dtype and shape, other values; a chain index stays small (a huge one only replays slowly)
        flat = old.reshape(-1).copy()
        for i in range(flat.size):
            if key == "reset_index":
                flat[i] = rnd.randrange(0, 4)
            elif flat.dtype.kind == "f":
                flat[i] = rnd.choice([np.nan, np.inf, -1.0, 0.5, 3.0, 1e30])
            elif flat.dtype.kind == "b":
                flat[i] = rnd.random() < 0.5
            else:
                info = np.iinfo(flat.dtype)
                flat[i] = rnd.choice([info.min, info.max, 0, 1, 5, int(flat[i]) + 1])
        arrays[key] = flat.reshape(old.shape)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    _load_then_verify(folder)


@FAST
@given(target=st.sampled_from(["manifest.json", "ep_0000.npz"]), cut=st.floats(0, 1),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), max_size=4), mode=st.sampled_from(["cut", "flip"]))
def test_byte_corruptions_are_refused_or_load_unchanged(saved_set, scratch, target, cut, flips, mode):
    folder = _copy(saved_set, scratch)
    path = folder / target
    data = bytearray(path.read_bytes())
    if mode == "cut":
        data = data[: int(cut * len(data))]
    else:
        for pos, xor in flips:
            data[min(int(pos * len(data)), len(data) - 1)] ^= xor
    path.write_bytes(bytes(data))
    try:
        ds = load_demos(folder)
    except DemoError as e:
        assert len(str(e).splitlines()) == 1 and str(folder) in str(e), str(e)
        return
    # zip CRCs guard the arrays; a flip the loader does not notice left the episodes as they were, or verify runs
    if ds.content_hash() != load_demos(saved_set).content_hash():
        _load_then_verify(folder)


# -- snippet samplers ----------------------------------------------------------------------------------------------
@st.composite
def sampler_inputs(draw):
    n_eps = draw(st.integers(2, 6))
    length = st.integers(1, 8) | st.integers(1, 120)  # short episodes too: shorter than a stride or a snippet
    lengths = np.array(draw(st.lists(length, min_size=n_eps, max_size=n_eps)), np.int64)
    pairs = draw(st.lists(st.tuples(st.integers(0, n_eps - 1), st.integers(0, n_eps - 1)).filter(lambda p: p[0] != p[1]),
                          min_size=1, max_size=8))
    ranking = Ranking(n_eps, np.array(pairs, np.int64), "return")
    return ranking, lengths, draw(st.integers(1, 40)), draw(st.integers(0, 130)), draw(st.integers(0, 140)), \
        draw(st.integers(0, 6)), draw(st.integers(0, 2**32))


def _check_inside(sp, lengths):
    n_obs = lengths + 1
    for ep, start in ((sp.ep_a, sp.start_a), (sp.ep_b, sp.start_b)):
        last = start + sp.stride * (sp.length - 1)
        assert np.all(start >= 0) and np.all(last < n_obs[ep]), "a snippet reaches outside its episode"


@FAST
@given(args=sampler_inputs())
def test_snippet_sampler_pairs_lie_inside_their_episodes(args):
    ranking, lengths, n_pairs, min_len, max_len, stride, seed = args
    try:
        sp = sample_snippet_pairs(ranking, lengths, n_pairs, min_len, max_len, stride, np.random.default_rng(seed))
    except ValueError:
        n_obs = lengths + 1
        fits = np.minimum(n_obs[ranking.pairs[:, 0]], n_obs[ranking.pairs[:, 1]]) >= min_len
        assert not (1 <= min_len < max_len and stride >= 1 and fits.any()), "valid arguments were refused"
        return
    assert len(sp) == n_pairs and set(np.unique(sp.label)) <= {0, 1}
    _check_inside(sp, lengths)
    worse = np.where(sp.label == 1, sp.ep_a, sp.ep_b)
    better = np.where(sp.label == 1, sp.ep_b, sp.ep_a)
    assert {(int(w), int(b)) for w, b in zip(worse, better)} <= {tuple(p) for p in ranking.pairs.tolist()}
    s_worse = np.where(sp.label == 1, sp.start_a, sp.start_b)
    s_better = np.where(sp.label == 1, sp.start_b, sp.start_a)
    assert np.all(s_better >= s_worse), "progress prior: the better snippet starts no earlier"
    assert np.all(sp.length >= -(-min_len // stride)) and np.all(sp.length <= -(-(max_len - 1) // stride))


@FAST
@given(args=sampler_inputs())
def test_whole_trajectory_pairs_lie_inside_their_episodes(args):
    ranking, lengths, n_pairs, _, _, stride, seed = args
    try:
        sp = whole_trajectory_pairs(ranking, lengths, n_pairs, stride, np.random.default_rng(seed))
    except ValueError:
        assert stride < 1, "valid arguments were refused"
        return
    assert len(sp) == n_pairs
    _check_inside(sp, lengths)
