"""Evaluation harness: N full games of a trained agent, true score, compared with the demonstrations.

Protocol (T-REX §5, PAPERS.md "RL on the learned reward"): 30 episodes of the *full game* (``training=False``: a
lost life does not end the episode), the *stochastic* policy by default, the *true* game score from
``info["episode"]``. Episodes run vectorised; exactly the first N *started* episodes count (counting the first N
*finished* would favour short, low-scoring games). Env i starts from a seed derived from ``(seed, i)``; each game is
recorded by the ``(episode_seed, episode_reset_index)`` that ``AtariVecEnv`` reports, which replays it. The same
agent, seed and ``n_envs`` give the same N games (policy sampling uses a seeded ``torch.Generator``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trex_bench.core.envs import get_profile, make_vec_env
from trex_bench.core.errors import ConfigError
from trex_bench.core.games import get_game, human_normalized
from trex_bench.core.io import check_path, claim_output, read_json, versions, write_json

__all__ = ["evaluate_agent", "episode_seed", "write_random_policy", "RANDOM_POLICY"]

RANDOM_POLICY = "random_policy"  # card kind of a uniform-random policy folder: evaluated like an agent, loads no model


def episode_seed(seed: int, k: int) -> int:
    """Reset seed of evaluation episode ``k`` under evaluation seed ``seed``."""
    return int(np.random.default_rng([seed, k]).integers(0, 2**31 - 1))


def evaluate_agent(
    agent_dir: str | Path,
    episodes: int = 30,
    seed: int = 0,
    deterministic: bool = False,
    n_envs: int = 8,
    demos_dir: str | Path | None = None,
    out: str | Path | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
    trust_pickle: bool = False,
    overwrite: bool = False,
    game: str | None = None,
) -> dict[str, Any]:
    """Play ``episodes`` full games with the agent of ``agent_dir`` and write ``eval.json``.

    Args:
        agent_dir: a ``train_ppo`` folder (``agent.zip`` + ``card.json``), a BC folder, or a random-policy folder
            (``write_random_policy``).
        episodes: number of games (30 in T-REX).
        seed: seeds the games' resets and the policy's action sampling (a ``torch.Generator``).
        deterministic: argmax actions instead of sampling (T-REX samples).
        n_envs: games played at once.
        demos_dir: a demo set to compare with (best and average return); must be of the agent's game and profile.
        out: where to write ``eval.json`` (default: ``agent_dir/eval.json``); a folder or a ``.json`` path.
        device: torch device of the policy.
        progress: show a progress bar over finished games.
        trust_pickle: load an SB3 agent through ``PPO.load``, running the pickles in its zip (``rl.ppo.load_agent``).
        overwrite: replace an existing file at the destination that is not an evaluation report.
        game: when given, refuse an agent (PPO or BC) of another game; the games are those of the agent's card.

    Returns:
        The report written to ``eval.json``.

    Raises:
        ValueError: bad counts, a destination of another kind, an agent of another game than ``game``, or one whose
            weights or action set do not fit its game's env (a BC policy over another action set is refused here,
            as ``demos collect --demonstrator bc:`` refuses it).
    """
    if episodes < 1 or n_envs < 1:
        raise ConfigError(f"episodes and n_envs must be >= 1, got {episodes} and {n_envs}")
    if not Path(agent_dir).is_dir():  # before --out, which defaults to it
        raise ConfigError(f"agent {agent_dir} is not a folder (agent.zip + card.json, a BC or a random-policy folder)")
    dest = _destination(Path(out) if out is not None else Path(agent_dir), overwrite)
    agent, card = _load_actor(agent_dir, device, trust_pickle)
    if deterministic and isinstance(agent, _RandomActor):
        raise ConfigError(f"{agent_dir} is a uniform-random policy: it has no deterministic (argmax) action")
    if game is not None and get_game(game).id != card["game"]:
        raise ConfigError(f"{agent_dir} is an agent of {card['game']}, not {get_game(game).id}")
    demos = None
    if demos_dir is not None:
        from trex_bench.demos.store import load_demos

        demos = load_demos(demos_dir, game=card["game"], profile=card["profile"])
    n_envs = min(n_envs, episodes)
    env = make_vec_env(
        card["game"], n_envs, card["profile"], training=False, episode_seeds=lambda k: episode_seed(seed, k)
    )
    gen = torch.Generator(device=agent.device).manual_seed(seed)
    t0 = time.perf_counter()
    try:
        returns, lengths, starts = _play(env, lambda obs: _act(agent, obs, deterministic, gen), episodes, progress)
    finally:
        env.close()
    report = _report(
        card, returns, lengths, starts, demos, demos_dir, seed, deterministic, n_envs, time.perf_counter() - t0
    )
    report["agent_dir"] = str(agent_dir)
    write_json(dest, report)
    report["path"] = str(dest)
    return report


def _play(env: Any, act: Any, episodes: int, progress: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``episodes`` *started* games of ``env`` played by ``act``: their true returns, lengths and
    ``(episode_seed, episode_reset_index)`` (counting the first N *finished* would favour short, low-scoring games)."""
    n_envs = env.num_envs
    returns = np.full(episodes, np.nan)
    lengths = np.zeros(episodes, dtype=np.int64)
    starts = np.zeros((episodes, 2), dtype=np.int64)  # (episode_seed, episode_reset_index) of each counted game
    slot = np.arange(n_envs)  # which of the N episodes each env is playing; -1: done, playing uncounted games
    started = n_envs
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=episodes, desc="evaluate", unit="game")
    obs = env.reset()
    try:
        while np.any(slot >= 0):
            obs, _, _, infos = env.step(act(obs))
            for i, info in enumerate(infos):
                if "episode" not in info:
                    continue
                if slot[i] >= 0:
                    returns[slot[i]] = info["episode"]["r"]
                    lengths[slot[i]] = info["episode"]["l"]
                    starts[slot[i]] = info["episode_seed"], info["episode_reset_index"]
                    if bar is not None:
                        bar.update(1)
                if started < episodes and slot[i] >= 0:
                    slot[i] = started
                    started += 1
                else:
                    slot[i] = -1
    finally:
        if bar is not None:
            bar.close()
    return returns, lengths, starts


def _destination(out: Path, overwrite: bool) -> Path:
    """``eval.json``'s path for ``--out`` (a ``.json`` path or a folder), refusing to replace a file of another kind
    (``core.io.claim_output``)."""
    check_path(out)  # a name too long: before any stat of it
    if out.suffix != ".json" and out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder or a .json path")
    dest = out if out.suffix == ".json" else out / "eval.json"
    claim_output(dest, "evaluation", overwrite)
    return dest


class _BCActor:
    """A BC policy folder seen through the two attributes ``_act`` uses (``device`` and action probabilities)."""

    def __init__(self, policy: Any) -> None:
        self.policy, self.device = policy, policy.device

    def probs(self, obs: np.ndarray) -> torch.Tensor:
        return self.policy.log_probs(obs).exp()


def write_random_policy(folder: str | Path, game: str, profile: str = "paper") -> Path:
    """A policy folder whose ``card.json`` says "uniform random over the game's actions" (method ``random``).

    ``evaluate_agent`` plays it through the same harness as every agent (same games, seeds and protocol), sampling
    each action uniformly with its seeded generator; no model is written or ever loaded.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    card = {"kind": RANDOM_POLICY, "policy": "random", "game": get_game(game).id, "profile": get_profile(profile).name}
    write_json(out / "card.json", {**card, "versions": versions()})
    return out


class _RandomActor:
    """Uniform action probabilities over ``n_actions``: the random policy, through the same ``_act`` as an agent."""

    device = torch.device("cpu")

    def __init__(self, n_actions: int) -> None:
        self.n_actions = n_actions

    def probs(self, obs: np.ndarray) -> torch.Tensor:
        return torch.full((len(obs), self.n_actions), 1.0 / self.n_actions)


def _load_actor(
    agent_dir: str | Path, device: str | torch.device, trust_pickle: bool = False
) -> tuple[Any, dict[str, Any]]:
    """An SB3 PPO agent folder, a behaviour-cloning folder (``rl.bc``: evaluated the same way, method ``bc``) or a
    random-policy folder (``write_random_policy``: no model at all).

    A BC policy must act over exactly the actions of its card's game and profile (count and names, read from
    ALE), as ``demos collect --demonstrator bc:`` requires; an SB3 agent's weights are fitted to the game's spaces
    by ``load_agent``.
    """
    from trex_bench.rl.ppo import load_agent

    card_path = Path(agent_dir) / "card.json"
    card = read_json(card_path) if card_path.is_file() else None
    if isinstance(card, dict) and card.get("kind") in ("bc_policy", RANDOM_POLICY):
        from trex_bench.bc.train import action_set

        for key in ("game", "profile"):
            if not isinstance(card.get(key), str):
                raise ConfigError(f"{card_path}: malformed {card['kind']} card ({key!r} missing or not a string)")
        if card["kind"] == RANDOM_POLICY:
            return _RandomActor(len(action_set(card["game"], card["profile"]))), card
        from trex_bench.bc.folder import load_bc

        actions = action_set(card["game"], card["profile"])
        policy = load_bc(agent_dir, game=card["game"], n_actions=len(actions), device=device)
        if policy.action_meanings is not None and list(policy.action_meanings) != actions:
            raise ConfigError(
                f"{agent_dir} is a BC model over actions {' '.join(policy.action_meanings)}, but {card['game']} "
                f"under profile {card['profile']!r} has {' '.join(actions)}"
            )
        return _BCActor(policy), card
    return load_agent(agent_dir, device, trust_pickle=trust_pickle)


@torch.no_grad()
def _act(agent: Any, obs: np.ndarray, deterministic: bool, gen: torch.Generator) -> np.ndarray:
    """Actions of the policy for a batch of stacks; sampling uses ``gen``, not torch's global RNG."""
    if isinstance(agent, (_BCActor, _RandomActor)):
        probs = agent.probs(obs)
    else:
        obs_t, _ = agent.policy.obs_to_tensor(obs)
        probs = agent.policy.get_distribution(obs_t).distribution.probs
    if deterministic:
        return probs.argmax(1).cpu().numpy()
    return torch.multinomial(probs, 1, generator=gen).squeeze(1).cpu().numpy()


def _report(card, returns, lengths, starts, demos, demos_dir, seed, deterministic, n_envs, wall) -> dict[str, Any]:
    mean = float(returns.mean())
    best_demo = float(demos.returns.max()) if demos is not None else None
    avg_demo = float(demos.returns.mean()) if demos is not None else None
    return {
        "kind": "evaluation",
        "game": card["game"],
        "profile": card["profile"],
        "protocol": "full games (no life-loss termination), true score, "
        + ("deterministic (argmax)" if deterministic else "stochastic")
        + " policy",
        "episodes": len(returns),
        "seed": seed,
        "deterministic": deterministic,
        "n_envs": n_envs,
        "returns": returns.tolist(),
        "lengths": lengths.tolist(),
        "episode_starts": starts.tolist(),
        "mean": mean,
        "std": float(returns.std()),
        "min": float(returns.min()),
        "max": float(returns.max()),
        "best_demo": best_demo,
        "avg_demo": avg_demo,
        "demos_dir": str(demos_dir) if demos_dir is not None else None,
        "demos_hash": demos.content_hash() if demos is not None else None,
        "beats_best_demo": (mean > best_demo) if best_demo is not None else None,
        "beats_avg_demo": (mean > avg_demo) if avg_demo is not None else None,
        "human_normalized": human_normalized(card["game"], mean),
        "agent": {k: card.get(k) for k in ("reward", "budget", "seed", "steps")},
        "wall_s": round(wall, 3),
        "versions": versions(),
    }
