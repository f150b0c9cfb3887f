"""Collect demo episodes from any demonstrator, vectorised, with every episode's seed recorded for replay."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trex_bench.core.envs import get_profile, make_vec_env
from trex_bench.core.errors import ConfigError
from trex_bench.core.games import get_game
from trex_bench.core.io import versions
from trex_bench.core.progress import progress_bar
from trex_bench.core.types import DemoSet, Episode, valid_noise
from trex_bench.demos.policies import Demonstrator
from trex_bench.demos.replay import frame_hash
from trex_bench.demos.store import HASH_EVERY

__all__ = ["CollectConfig", "collect"]


@dataclass(frozen=True)
class CollectConfig:
    """What to collect.

    Attributes:
        episodes: number of episodes (exactly these are recorded: the first ``episodes`` started, whatever their
            length, so short episodes are not favoured).
        seed: seeds the per-episode reset seeds.
        profile: env profile name.
        n_envs: envs stepped together.
        noise: ε recorded with each episode (the demonstrator applies it).
        checkpoint: checkpoint index recorded with each episode (-1 = none).
        max_steps: optional cap on agent steps per episode (the profile's 108 000-frame cap always holds); an
            episode stopped by it is recorded as truncated.
    """

    episodes: int
    seed: int = 0
    profile: str = "paper"
    n_envs: int = 4
    noise: float = 0.0
    checkpoint: int = -1
    max_steps: int | None = None

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ConfigError(f"episodes must be >= 1, got {self.episodes}")
        if not valid_noise(self.noise):
            raise ConfigError(f"noise must be in [0, 1] (or NOOP_NOISE, the D-REX no-op bin), got {self.noise}")
        if self.n_envs < 1:
            raise ConfigError(f"n_envs must be >= 1, got {self.n_envs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {self.max_steps}")
        get_profile(self.profile)


def collect(
    game: str, demonstrator: Demonstrator, cfg: CollectConfig, progress: bool = True, created_by: str = ""
) -> DemoSet:
    """Run ``demonstrator`` for ``cfg.episodes`` full episodes and return them as a ``DemoSet``."""
    g = get_game(game)
    n_envs = min(cfg.n_envs, cfg.episodes)
    venv = make_vec_env(g, n_envs, cfg.profile, seed=cfg.seed, num_threads=min(n_envs, 2))
    playing = np.arange(n_envs)  # episode index per env; >= cfg.episodes means the env idles
    started = n_envs
    acts: list[list[int]] = [[] for _ in range(cfg.episodes)]
    rews: list[list[float]] = [[] for _ in range(cfg.episodes)]
    hashes: list[list[np.uint64]] = [[] for _ in range(cfg.episodes)]
    starts: list[tuple[int, int]] = [(0, 0)] * cfg.episodes  # (seed, reset_index) of each episode
    done_eps: dict[int, Episode] = {}
    bar = progress_bar(cfg.episodes, f"collect {g.id}", "ep", enabled=progress)
    try:
        obs = venv.reset()
        seeds, index = venv.current_starts()
        for i in range(n_envs):
            hashes[i].append(frame_hash(obs[i, -1]))
            starts[i] = (int(seeds[i]), int(index[i]))
        while len(done_eps) < cfg.episodes:
            actions = demonstrator.act(obs)
            obs, rew, dones, infos = venv.step(actions)
            capped = np.zeros(n_envs, bool)
            for i in range(n_envs):
                k = playing[i]
                if k >= cfg.episodes:
                    continue
                acts[k].append(int(actions[i]))
                rews[k].append(float(rew[i]))
                t = len(acts[k])
                over = bool(infos[i].get("game_over"))
                capped[i] = not over and cfg.max_steps is not None and t >= cfg.max_steps
                if over or capped[i] or t % HASH_EVERY == 0:
                    frame = infos[i]["terminal_observation"][-1] if over else obs[i, -1]
                    hashes[k].append(frame_hash(frame))
                if over or capped[i]:
                    done_eps[k] = _episode(
                        starts[k],
                        acts[k],
                        rews[k],
                        hashes[k],
                        cfg,
                        truncated=capped[i] or infos[i].get("TimeLimit.truncated", False),
                    )
                    bar.update(1)
                    playing[i] = started
                    started += 1
            if capped.any():
                obs = venv.restart(capped)
            seeds, index = venv.current_starts()
            for i in range(n_envs):
                k = playing[i]
                if k < cfg.episodes and len(acts[k]) == 0:  # a new episode starts here: record its start
                    hashes[k][:] = [frame_hash(obs[i, -1])]
                    starts[k] = (int(seeds[i]), int(index[i]))
    finally:
        bar.close()
        venv.close()
    p = get_profile(cfg.profile)
    return DemoSet(
        game=g.id,
        profile=p.name,
        profile_settings=p.settings(),
        demonstrator=demonstrator.describe(),
        episodes=tuple(done_eps[k] for k in range(cfg.episodes)),
        versions=versions(),
        created_by=created_by,
    )


def _episode(
    start: tuple[int, int],
    acts: list[int],
    rews: list[float],
    hashes: list[np.uint64],
    cfg: CollectConfig,
    truncated: bool,
) -> Episode:
    length = len(acts)
    steps = np.unique(np.append(np.arange(0, length + 1, HASH_EVERY), length)).astype(np.int64)
    if len(steps) != len(hashes):
        raise RuntimeError(f"internal error: {len(hashes)} hashes for {len(steps)} hash steps")
    return Episode(
        seed=start[0],
        reset_index=start[1],
        actions=np.asarray(acts, dtype=np.uint8),
        rewards=np.asarray(rews, dtype=np.float32),
        hash_steps=steps,
        frame_hashes=np.asarray(hashes, dtype=np.uint64),
        noise=cfg.noise,
        checkpoint=cfg.checkpoint,
        truncated=bool(truncated),
    )
