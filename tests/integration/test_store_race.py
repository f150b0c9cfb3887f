"""Two processes saving demo sets into one folder at the same moment (issue 16, D5): exactly one publishes its whole
set, the other fails in one line and nothing is interleaved or left behind."""

from __future__ import annotations

import multiprocessing as mp
from dataclasses import replace

import pytest

from trex_bench.demos import store
from trex_bench.demos.store import DemoError, check_demo_out, load_demos, save_demos


def _save_after_barrier(ds, out, overwrite, barrier, results) -> None:
    """Child: write the set's files, wait until the other child has written its own, then publish."""
    real = store.write_json

    def write_then_wait(path, obj):  # the manifest is the last file written before the folder is published
        real(path, obj)
        barrier.wait(timeout=60)

    store.write_json = write_then_wait
    try:
        save_demos(ds, out, overwrite=overwrite)
        results.put(("ok", ds.content_hash()))
    except DemoError as e:
        results.put(("DemoError", str(e)))
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put((type(e).__name__, str(e)))


@pytest.mark.parametrize("existing", [False, True], ids=["new-folder", "overwrite-a-set"])
def test_two_processes_saving_into_one_folder(tmp_path, breakout_demos, existing):
    a = replace(breakout_demos, episodes=breakout_demos.episodes[:2])
    b = replace(breakout_demos, episodes=breakout_demos.episodes[2:])
    out = tmp_path / "set"
    if existing:
        save_demos(replace(breakout_demos, episodes=breakout_demos.episodes[1:3]), out)
    ctx = mp.get_context("fork")  # the children only write files: no torch or env state crosses the fork
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_save_after_barrier, args=(ds, out, existing, barrier, results)) for ds in (a, b)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    wins = [h for kind, h in outcomes if kind == "ok"]
    losses = [msg for kind, msg in outcomes if kind != "ok"]
    assert len(wins) == 1 and len(losses) == 1, outcomes
    assert [kind for kind, _ in outcomes].count("DemoError") == 1, outcomes
    assert "another process" in losses[0] and len(losses[0].splitlines()) == 1
    assert load_demos(out).content_hash() == wins[0]  # the winner's whole set, nothing of the loser's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # no temp or trash folder left behind


def test_overwrite_refuses_a_set_written_after_the_check(tmp_path, breakout_demos):
    """``demos collect --overwrite`` checks --out before collecting; a set that another process publishes there
    while this one collects is not replaced."""
    out = tmp_path / "set"
    save_demos(breakout_demos, out)
    seen = check_demo_out(out, overwrite=True)  # what collect saw when it started
    save_demos(replace(breakout_demos, episodes=breakout_demos.episodes[:1]), out, overwrite=True)  # another run
    mine = replace(breakout_demos, episodes=breakout_demos.episodes[2:])
    with pytest.raises(DemoError, match="another process"):
        save_demos(mine, out, overwrite=True, replaces=seen)
    assert len(load_demos(out).episodes) == 1
    save_demos(mine, out, overwrite=True, replaces=check_demo_out(out, overwrite=True))  # a fresh check: replaced
    assert load_demos(out).content_hash() == mine.content_hash()
