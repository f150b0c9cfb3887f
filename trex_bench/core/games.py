"""Game registry: the one place that knows game facts.

Every game id maps to its ALE ROM id, the rows of the 84×84 frame that the reward net masks (score and lives,
T-REX §5 / released code ``mask_score``; listed in PAPERS.md), and the random and human reference scores used for
human-normalised scores (the values quoted by the T-REX and D-REX papers, from Mnih et al. 2015).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trex_bench.core.errors import ConfigError

__all__ = ["Game", "GAMES", "get_game", "human_normalized"]


@dataclass(frozen=True)
class Game:
    """Facts about one Atari game.

    Attributes:
        id: our canonical lower-case id, e.g. ``"breakout"``.
        ale_id: the ROM name ale-py knows (``ale_py.roms.get_rom_path``), e.g. ``"breakout"``.
        gym_v4_id: the classic id the papers used, e.g. ``"BreakoutNoFrameskip-v4"``.
        mask_top: rows 0..mask_top-1 of the 84×84 frame are zeroed for the reward net.
        mask_bottom: the last ``mask_bottom`` rows are zeroed for the reward net.
        random_score: score of a uniform random policy (None where the papers give none).
        human_score: score of the human tester (None where the papers give none).
        in_paper: one of the 8 games of T-REX Table 1.
    """

    id: str
    ale_id: str
    gym_v4_id: str
    mask_top: int
    mask_bottom: int
    random_score: float | None
    human_score: float | None
    in_paper: bool

    @property
    def mask_rows(self) -> tuple[int, ...]:
        """Indices of the masked rows of an 84×84 frame."""
        return tuple(range(self.mask_top)) + tuple(range(84 - self.mask_bottom, 84))


def _game(
    gid: str, ale: str, v4: str, top: int, bottom: int, rnd: float | None, hum: float | None, paper: bool
) -> Game:
    return Game(gid, ale, v4, top, bottom, rnd, hum, paper)


# Masks: T-REX released code (atari/baselines/.../custom_reward_wrapper.py, mask_score) as listed in PAPERS.md.
# Random / human scores: PAPERS.md (Mnih et al. 2015 values quoted by T-REX/D-REX); MsPacman, VideoPinball and
# Montezuma's Revenge from the same source (Mnih et al. 2015, Extended Data Table 2).
GAMES: dict[str, Game] = {
    g.id: g
    for g in (
        _game("beamrider", "beam_rider", "BeamRiderNoFrameskip-v4", 16, 11, 363.9, 16926.5, True),
        _game("breakout", "breakout", "BreakoutNoFrameskip-v4", 10, 0, 1.7, 30.5, True),
        _game("enduro", "enduro", "EnduroNoFrameskip-v4", 0, 14, 0.0, 860.5, True),
        _game("hero", "hero", "HeroNoFrameskip-v4", 0, 30, 1027.0, 30826.4, True),
        _game("pong", "pong", "PongNoFrameskip-v4", 10, 0, -20.7, 14.6, True),
        _game("qbert", "qbert", "QbertNoFrameskip-v4", 12, 0, 163.9, 13455.0, True),
        _game("seaquest", "seaquest", "SeaquestNoFrameskip-v4", 12, 16, 68.4, 42054.7, True),
        _game("spaceinvaders", "space_invaders", "SpaceInvadersNoFrameskip-v4", 10, 0, 148.0, 1668.7, True),
        _game("mspacman", "ms_pacman", "MsPacmanNoFrameskip-v4", 0, 15, 307.3, 15693.0, False),
        _game("videopinball", "video_pinball", "VideoPinballNoFrameskip-v4", 15, 0, 16257.0, 17668.0, False),
        _game("montezumarevenge", "montezuma_revenge", "MontezumaRevengeNoFrameskip-v4", 10, 0, 0.0, 4367.0, False),
    )
}


def _normalise(name: str) -> str:
    """``"BreakoutNoFrameskip-v4"``, ``"ALE/Breakout-v5"``, ``"space_invaders"`` → ``"breakout"`` etc."""
    name = name.strip().lower()
    name = name.removeprefix("ale/")
    name = re.sub(r"(noframeskip)?-v\d+$", "", name)
    name = re.sub(r"(deterministic)$", "", name)
    return re.sub(r"[^a-z]", "", name)


def get_game(name: str) -> Game:
    """Look a game up by any common spelling.

    Args:
        name: ``"breakout"``, ``"Breakout"``, ``"BreakoutNoFrameskip-v4"``, ``"ALE/Breakout-v5"``,
            ``"space_invaders"``, ...

    Raises:
        ValueError: the name matches no game; the message lists the valid ids.

    >>> get_game("BreakoutNoFrameskip-v4").id
    'breakout'
    """
    if isinstance(name, Game):
        return name
    key = _normalise(str(name))
    aliases = {"montezuma": "montezumarevenge", "montezumasrevenge": "montezumarevenge", "pinball": "videopinball"}
    key = aliases.get(key, key)
    if key not in GAMES:
        raise ConfigError(f"unknown game {name!r}; valid ids: {', '.join(sorted(GAMES))}")
    return GAMES[key]


def human_normalized(game: Game | str, score: float) -> float | None:
    """(score − random) / (human − random), or None where the reference scores are unknown."""
    g = get_game(game) if isinstance(game, str) else game
    if g.random_score is None or g.human_score is None:
        return None
    return (score - g.random_score) / (g.human_score - g.random_score)
