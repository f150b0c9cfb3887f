"""The game registry: spellings, masks, errors."""

import pytest

from trex_bench.core.games import GAMES, get_game, human_normalized

PAPER_GAMES = {"beamrider", "breakout", "enduro", "hero", "pong", "qbert", "seaquest", "spaceinvaders"}


def test_registry_has_paper_games_and_extras():
    assert PAPER_GAMES <= set(GAMES)
    assert {"mspacman", "videopinball", "montezumarevenge"} <= set(GAMES)
    assert {g.id for g in GAMES.values() if g.in_paper} == PAPER_GAMES


@pytest.mark.parametrize("name", ["breakout", "Breakout", "BreakoutNoFrameskip-v4", "ALE/Breakout-v5", " BREAKOUT "])
def test_common_spellings(name):
    assert get_game(name).id == "breakout"


def test_space_invaders_spellings():
    assert get_game("SpaceInvadersNoFrameskip-v4").id == "spaceinvaders"
    assert get_game("space_invaders").id == "spaceinvaders"


def test_unknown_game_lists_valid_ids():
    with pytest.raises(ValueError, match="valid ids:.*breakout"):
        get_game("breakot")


@pytest.mark.parametrize(
    ("gid", "top", "bottom"),
    [("breakout", 10, 0), ("beamrider", 16, 11), ("enduro", 0, 14), ("hero", 0, 30), ("seaquest", 12, 16), ("qbert", 12, 0)],
)
def test_masks_from_papers(gid, top, bottom):
    g = get_game(gid)
    assert (g.mask_top, g.mask_bottom) == (top, bottom)
    assert len(g.mask_rows) == top + bottom
    assert all(0 <= r < 84 for r in g.mask_rows)


def test_roms_exist_for_every_game():
    from ale_py import roms

    for g in GAMES.values():
        assert roms.get_rom_path(g.ale_id) is not None, g.id


def test_human_normalized():
    assert human_normalized("breakout", 1.7) == pytest.approx(0.0)
    assert human_normalized("breakout", 30.5) == pytest.approx(1.0)
    assert human_normalized("pong", -20.7) == pytest.approx(0.0)
