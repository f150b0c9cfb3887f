"""D-REX's automatically ranked data (Brown, Goo, Niekum, CoRL 2019): behaviour-cloned rollouts at noise levels.

The demos rank above everything (ε = 0), then ε-greedy rollouts of the BC policy at each ε (less noise ≻ more
noise), then a no-op bin (a NOOP-only policy, ranked below every ε; ``types.NOOP_NOISE``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from trex_bench.core.types import NOOP_NOISE, DemoSet

__all__ = ["DREX_NOISE", "NOOP_EPISODES", "NOOP_STEPS", "level_seed", "noise_rollouts", "rollout_recipe"]

# D-REX §4 / the released drex-atari/LearnAtariSyntheticRankingsBinning.py (epsilon_greedy_list): ε-greedy noise
# around the BC policy at these levels.
DREX_NOISE = (1.0, 0.75, 0.5, 0.25, 0.01)
# The no-op bin of the released code (``generate_noop_demo``): 4 episodes of NOOP, each stopped after 501 steps.
NOOP_EPISODES, NOOP_STEPS = 4, 501


def rollout_recipe() -> dict[str, object]:
    """What ``noise_rollouts`` does beyond its arguments, for the keys of the stages and runs that call it."""
    return {
        "levels": list(DREX_NOISE),
        "clone": "argmax",
        "noop": [NOOP_EPISODES, NOOP_STEPS],
        "starts": "per level",  # ``level_seed``
    }


def level_seed(seed: int, level: int) -> int:
    """The start seed of a run's rollouts at its ``level``-th noise bin: its own for each (run seed, level), where
    ``seed + level`` gave run s's level i + 1 the game starts of run s + 1's level i.

    >>> level_seed(0, 1) != level_seed(1, 0) and level_seed(0, 1) == level_seed(0, 1)
    True
    """
    return int(np.random.SeedSequence([seed, 100, level]).generate_state(1)[0])


def noise_rollouts(
    demos: DemoSet,
    bc_dir: Path,
    out: Path,
    *,
    per_level: int,
    seed: int,
    device: str = "cpu",
    progress: bool = True,
    levels: tuple[float, ...] = DREX_NOISE,
) -> None:
    """Write D-REX's ranking data to ``out/demos`` (the demos as ε = 0, ``per_level`` rollouts at each ε of the BC
    policy acting by argmax, the no-op bin) and its degradation curve to ``out/degradation``.

    Rollouts are capped at twice the longest demo (a clone that never presses FIRE would otherwise idle until the
    108 000-frame cap); a capped rollout is recorded as truncated. The no-op bin is the released code's
    (``NOOP_EPISODES`` of at most ``NOOP_STEPS``), whatever ``per_level``.
    """
    from trex_bench.bc.folder import load_bc
    from trex_bench.demos.collect import CollectConfig, collect
    from trex_bench.demos.degradation import write_degradation
    from trex_bench.demos.policies import EpsilonGreedy, NoopPolicy
    from trex_bench.demos.store import merge_demo_sets, save_demos

    rng = np.random.default_rng(seed)
    # The clone acts by argmax (the released bc.py's Clone.get_action): ε alone is the noise, so the lowest-noise
    # bin is near the clone itself; a sampling clone adds its own randomness to every bin.
    bc = load_bc(bc_dir, game=demos.game, device=device, deterministic=True)
    cap = int(2 * demos.lengths.max())
    parts = [
        DemoSet(
            demos.game,
            demos.profile,
            demos.profile_settings,
            f"demos ({demos.demonstrator}) as ε = 0",
            tuple(dataclasses.replace(e, noise=0.0) for e in demos.episodes),
            demos.versions,
            demos.created_by,
        )
    ]
    for i, eps in enumerate((*levels, NOOP_NOISE)):
        n, steps = (NOOP_EPISODES, NOOP_STEPS) if eps == NOOP_NOISE else (per_level, cap)
        cc = CollectConfig(
            episodes=n, seed=level_seed(seed, i), profile=demos.profile, noise=eps, max_steps=steps, n_envs=n
        )
        policy = NoopPolicy() if eps == NOOP_NOISE else EpsilonGreedy(bc, eps, bc.n_actions, rng)
        what = "D-REX no-op bin" if eps == NOOP_NOISE else "D-REX noise rollouts"
        parts.append(collect(demos.game, policy, cc, progress=progress, created_by=f"trex-bench pipeline ({what})"))
    save_demos(merge_demo_sets(parts), out / "demos")
    write_degradation(merge_demo_sets(parts[1:-1]), out / "degradation", demo_set=demos)
