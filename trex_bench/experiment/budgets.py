"""The one budget table: every named budget's reward-trainer, BC, D-REX-rollout, PPO and evaluation presets.

The CLI's choices come from its keys. Each value cites where it comes from (the papers, their released code, rl-zoo3,
or a measurement on the project's 2-core CPU machines, whose numbers are in ``docs/measurements.md``).
``trex_bench.experiment.config`` resolves a budget, a method and overrides into an ``ExperimentConfig``; the stage
modules below this layer keep no budget table of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trex_bench.bc.config import BCConfig
from trex_bench.core.errors import ConfigError
from trex_bench.reward.config import TrainConfig
from trex_bench.reward.prefs_config import PrefsConfig
from trex_bench.rl.config import PPOConfig
from trex_bench.rl.gail_config import GAILConfig

__all__ = [
    "Budget",
    "BUDGETS",
    "ZOO_HORIZON",
    "get_budget",
    "MEASURED",
    "DREX_PAPER",
    "DREX_STRIDE",
    "reward_config",
    "bc_config",
    "ppo_config",
    "PREFS",
    "prefs_config",
    "GAIL",
    "gail_config",
]

# -- the one budget table -------------------------------------------------------------------------------------------

# Reward trainer on a 2-core CPU (docs/measurements.md, "Reward trainer"): channels_last ~2× faster at batch 32;
# bf16 autocast of the reward net slower on CPUs without native bf16 kernels (PPO's policy decides its numerics by a
# probe instead: rl/precision.py); batch 32 pairs keeps the per-frame speed of batch 1 with ~30× fewer Adam steps.
MEASURED: dict[str, Any] = dict(batch_pairs=32, bf16=False, channels_last=True)
# D-REX (Brown et al. CoRL 2019, released LearnAtariSyntheticRankingsBinning.py): 40 000 pairs, stride 4, Adam 1e-5,
# 32 first-conv filters (net.WIDTHS), early stopping.
DREX_PAPER: dict[str, Any] = dict(
    n_pairs=40000, min_len=50, max_len=100, stride=4, lr=1e-5, passes=1.0, eval_every=2000, patience=5
)
DREX_STRIDE: dict[str, Any] = dict(stride=4)  # D-REX released script: stride 4 (below the paper budget)

# PPO: rl-zoo3 hyperparams/ppo.yml `atari` (Raffin et al., "RL Baselines3 Zoo", 2020): 8 envs, n_steps 128,
# batch 256, 4 epochs, lr lin_2.5e-4, clip lin_0.1, ent 0.01, vf 0.5, n_timesteps 1e7.
_ZOO: dict[str, Any] = dict(
    n_envs=8, n_steps=128, batch_size=256, n_epochs=4, learning_rate=2.5e-4, clip_range=0.1, ent_coef=0.01, vf_coef=0.5
)
ZOO_HORIZON = 10_000_000


@dataclass(frozen=True)
class Budget:
    """One row of the budget table: every stage's preset at this budget.

    Attributes:
        name: the budget's name.
        reward: ``TrainConfig`` values of T-REX (over ``MEASURED``); ``drex_reward`` is applied on top for D-REX.
        bc: ``BCConfig`` values (the D-REX clone, ``--method bc``).
        drex_rollouts: D-REX's ε-greedy rollouts of the clone per noise level.
        ppo: the PPO run. The CPU and GPU budgets are *prefixes* of rl-zoo3's 10M-step run: lr and clip anneal
            over ``ZOO_HORIZON`` and the run stops at ``total_steps``, so a CPU row is the papers' run at step N
            (docs/measurements.md, "Prefix schedules", for what annealing over the budget's own steps cost).
        eval_episodes: full games in the evaluation: 30 is the papers' protocol (T-REX §5); smoke only checks the
            path.
    """

    name: str
    reward: Mapping[str, Any]
    drex_reward: Mapping[str, Any]
    bc: Mapping[str, Any]
    drex_rollouts: int
    ppo: PPOConfig
    eval_episodes: int


# Every budget is a count of pairs, passes and steps: the same seed gives the same result on any machine, busy or
# idle (a wall-time cap once made the reward's `quick` stop at step 47 of 171 on a loaded machine). max_seconds
# stays an opt-in valve, never set here.
_PAPER_REWARD: dict[str, Any] = dict(  # T-REX §5.1 / released code: 6000 pairs, span 50–100, stride 2, Adam 5e-5,
    n_pairs=6000,  # batch 1, 5 passes
    min_len=50,
    max_len=100,
    stride=2,
    lr=5e-5,
    batch_pairs=1,
    passes=5.0,
    eval_every=1000,
    patience=0,
    bf16=False,
    channels_last=False,
)
# D-REX BC recipe (Adam 1e-4, batch 32, early stopping). The number of steps is not stated in PAPERS.md: a cap of
# 100 000 steps (~several passes over 10 demos of a few thousand frames) with early stopping deciding.
_PAPER_BC: dict[str, Any] = dict(max_steps=100_000, eval_every=1000, patience=5)
# T-REX §5 / D-REX §5: OpenAI-baselines PPO2 Atari defaults (baselines/ppo2/defaults.py `atari()`: nsteps 128,
# nminibatches 4, 4 epochs, lr 2.5e-4·f, clip 0.1·f, ent 0.01, vf 0.5, grad norm 0.5, γ 0.99, λ 0.95),
# 9 parallel envs, 50M frames = 12.5M agent steps (PAPERS.md "RL on the learned reward"). Batch 128·9/4 = 288.
_PAPER_PPO = PPOConfig(
    "paper",
    total_steps=12_500_000,
    n_envs=9,
    n_steps=128,
    batch_size=288,
    n_epochs=4,
    learning_rate=2.5e-4,
    clip_range=0.1,
    ent_coef=0.01,
    vf_coef=0.5,
    checkpoint_every=500_000,
    source="T-REX/D-REX: OpenAI baselines PPO2 Atari defaults, 9 envs, 50M frames",
)
_SMALL_REWARD: dict[str, Any] = dict(n_pairs=6000, lr=2e-4, passes=5.0, eval_every=25, patience=8)
_SMALL_BC: dict[str, Any] = dict(max_steps=10_000, eval_every=250, patience=8)


def _small_recipe(ppo: PPOConfig) -> Budget:
    """A budget named after ``ppo`` with the ``small`` reward, BC and D-REX recipe (small, medium, gpu)."""
    return Budget(
        ppo.name,
        reward=_SMALL_REWARD,
        drex_reward=DREX_STRIDE,
        bc=_SMALL_BC,
        drex_rollouts=3,
        ppo=ppo,
        eval_episodes=30,
    )


def _zoo_prefix(name: str, steps: int, checkpoint_every: int) -> PPOConfig:
    """rl-zoo3's Atari PPO run stopped after its first ``steps`` agent steps (lr and clip anneal over 10M)."""
    label = f"{steps / 1_000_000:g}M" if steps >= 1_000_000 else f"{steps // 1000}k"
    return PPOConfig(
        name,
        total_steps=steps,
        schedule_steps=ZOO_HORIZON,
        checkpoint_every=checkpoint_every,
        source=f"rl-zoo3 Atari PPO: the first {label} steps of its 10M-step schedule",
        **_ZOO,
    )


BUDGETS: dict[str, Budget] = {
    # Seconds to a couple of minutes on 2 cores: exercises every stage; scores are meaningless.
    "smoke": Budget(
        "smoke",
        reward=dict(n_pairs=200, min_len=10, max_len=20, lr=1e-3, passes=1.0, eval_every=5, patience=3),
        drex_reward=DREX_STRIDE,
        bc=dict(max_steps=30, eval_every=10, patience=2),
        drex_rollouts=1,
        ppo=PPOConfig(
            "smoke", total_steps=2_048, n_envs=4, n_steps=64, batch_size=128, n_epochs=2, source="smoke test"
        ),
        eval_episodes=2,
    ),
    # make quickstart, ≤ 15 min end to end on 2 CPU cores: reward a couple of minutes (larger lr + early stopping
    # instead of 5 slow passes), PPO the rest (docs/measurements.md).
    "quick": Budget(
        "quick",
        reward=dict(n_pairs=2000, lr=3e-4, passes=3.0, eval_every=20, patience=6),
        drex_reward=DREX_STRIDE,
        bc=dict(max_steps=2000, eval_every=100, patience=5),
        drex_rollouts=2,
        ppo=_zoo_prefix("quick", 120_000, checkpoint_every=40_000),
        eval_episodes=30,
    ),
    # ≤ 60 min on 2 CPU cores: PPO ≈ 43 minutes at 194 steps/s, + ≤ 5 min of reward training.
    "small": _small_recipe(_zoo_prefix("small", 500_000, checkpoint_every=100_000)),
    # Twice small, ~70-90 min of PPO on 2 CPU cores: rl-zoo3's 1M-step curve point, and the demonstrator run of games
    # whose first 240k steps do not spread (Pong: -17 at 500k; Enduro: rl-zoo3 0 / 22 / 112 / 214 at 125k-1M).
    "medium": _small_recipe(_zoo_prefix("medium", 1_000_000, checkpoint_every=100_000)),
    # 2.5M steps, ~2 h of PPO per run on 2 CPU cores: the demonstrator run of a game that scores only after 1M steps
    # (Enduro: its first point at 825k, 178 at 2M; demos/README.md), and that game's T-REX and control rows.
    "long": _small_recipe(_zoo_prefix("long", 2_500_000, checkpoint_every=250_000)),
    # The papers' values (PAPERS.md), for a GPU or a cluster; hours per game.
    "paper": Budget(
        "paper",
        reward=_PAPER_REWARD,
        drex_reward=DREX_PAPER,
        bc=_PAPER_BC,
        drex_rollouts=5,
        ppo=_PAPER_PPO,
        eval_episodes=30,
    ),
    # One GPU + 16 CPU cores within one `device` lease (15 min of device time in all, start and evaluation
    # included): 700k steps, what 300 s of PPO reached there (results/device/).
    # rl-zoo3 settings with 16 envs (one per core), batch 512; a prefix of a 10M-step schedule. Reward and BC: the
    # small recipe.
    "gpu": _small_recipe(
        PPOConfig(
            "gpu",
            total_steps=700_000,
            checkpoint_every=100_000,
            schedule_steps=ZOO_HORIZON,
            source="rl-zoo3 Atari PPO, 16 envs, batch 512: the first 700k steps of a 10M-step schedule",
            **(_ZOO | dict(n_envs=16, batch_size=512)),
        )
    ),
    # The papers' reward and BC with rl-zoo3's tuned 10M-step PPO instead of baselines' PPO2.
    "paper-zoo": Budget(
        "paper-zoo",
        reward=_PAPER_REWARD,
        drex_reward=DREX_PAPER,
        bc=_PAPER_BC,
        drex_rollouts=5,
        ppo=PPOConfig(
            "paper-zoo", total_steps=ZOO_HORIZON, checkpoint_every=500_000, source="rl-zoo3 tuned Atari PPO", **_ZOO
        ),
        eval_episodes=30,
    ),
}


# The online preference loop per budget (``PrefsConfig`` fields over its defaults, which are Christiano et al.'s Atari
# recipe: 5 500 labels, 200 pretraining epochs, 0.1 training pairs per agent step). Label counts: a few thousand at
# the RL budgets (§3.1.2: 5 500 in the paper's Atari runs; most of the gain came from the first few hundred),
# proportionally fewer below. On a CPU the paper's predictor rate costs ~6× PPO's own time: the CPU budgets train the
# nets 10× less (0.01 pairs per step, 5 pretraining epochs), measured at 0.78× PPO's steps/s on a fixed learned
# reward against 0.37× at the paper's rate (docs/preferences.md).
_CPU_PREFS: dict[str, Any] = dict(pretrain_epochs=5, train_pairs_per_step=0.01)
PREFS: dict[str, dict[str, Any]] = {
    "smoke": dict(total_labels=50, initial_share=0.5, pretrain_epochs=1, train_pairs_per_step=0.01),
    "quick": dict(total_labels=500, **_CPU_PREFS),
    "small": dict(total_labels=2000, **_CPU_PREFS),
    "medium": dict(total_labels=3000, **_CPU_PREFS),
    "long": dict(total_labels=5500, **_CPU_PREFS),
    "gpu": dict(total_labels=2000, pretrain_epochs=50),
    "paper": {},
    "paper-zoo": {},
}


# GAIL's discriminator per budget (``GAILConfig`` fields over its defaults: 2 epochs a rollout as imitation's
# AdversarialTrainer, batch 256, Adam 1e-4; docs/gail.md). One recipe at every budget: its cost is per rollout.
GAIL: dict[str, dict[str, Any]] = {
    name: {} for name in ("smoke", "quick", "small", "medium", "long", "gpu", "paper", "paper-zoo")
}


def gail_config(budget: str, **overrides: Any) -> GAILConfig:
    """GAIL's ``GAILConfig`` at ``budget``, plus overrides."""
    get_budget(budget)
    return GAILConfig(**(GAIL[budget] | overrides))


def prefs_config(budget: str, horizon_steps: int, **overrides: Any) -> PrefsConfig:
    """The preference loop's ``PrefsConfig`` at ``budget`` for a PPO run of ``horizon_steps``, plus overrides."""
    get_budget(budget)
    return PrefsConfig(horizon_steps=horizon_steps, **(PREFS[budget] | overrides))


def get_budget(name: str) -> Budget:
    """The named budget; an unknown name is a one-line ``ConfigError`` listing the valid ones."""
    if name not in BUDGETS:
        raise ConfigError(f"unknown budget {name!r}; valid: {', '.join(BUDGETS)}")
    return BUDGETS[name]


def reward_config(budget: str, method: str = "trex", **overrides: Any) -> TrainConfig:
    """The reward trainer's preset of a budget for ``trex`` or ``drex``, plus overrides."""
    b = get_budget(budget)
    values = dict(MEASURED) | dict(b.reward) | (dict(b.drex_reward) if method == "drex" else {}) | overrides
    return TrainConfig(method=method, **values)  # type: ignore[arg-type]  # TrainConfig validates the method


def bc_config(budget: str, **overrides: Any) -> BCConfig:
    """The behaviour-cloning preset of a budget, plus overrides."""
    return BCConfig(**(dict(get_budget(budget).bc) | overrides))


def ppo_config(budget: str | PPOConfig) -> PPOConfig:
    """The PPO preset of a budget (a ``PPOConfig`` passes through)."""
    return budget if isinstance(budget, PPOConfig) else get_budget(budget).ppo
