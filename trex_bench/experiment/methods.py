"""The methods as stage lists: adding a method is one :data:`METHODS` entry (plus the functions of any stage it adds
to ``trex_bench.experiment.stages.STAGES``). ``trex_bench.experiment.config`` re-exports these names. Torch-free: the
CLI reads them at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass

from trex_bench.core.errors import ConfigError

__all__ = ["Method", "METHODS", "NOT_BUILT", "RANKINGS", "get_method"]

RANKINGS = ("return", "checkpoint", "noise", "human", "synthetic")


@dataclass(frozen=True)
class Method:
    """A method: the stages it runs, in order (``trex_bench.experiment.stages.STAGES`` holds their functions).

    Attributes:
        name: the method's name (``--method``).
        stages: stage names in the order they run.
        rankings: the rankings its reward net may be trained on (the first is the default); () for no reward net.
        reward: what PPO sees: ``learned`` (the reward stage's net), ``true`` (the clipped game score), ``constant``
            (1 per step), ``prefs`` (the online preference loop's ensemble), ``gail`` (the discriminator's
            −log(1 − D)), or "" when the method runs no PPO.
        row_transform: the leaderboard's ``reward_transform`` of a method without a learned reward.
    """

    name: str
    stages: tuple[str, ...]
    rankings: tuple[str, ...] = ()
    reward: str = ""
    row_transform: str = ""

    @property
    def learned_reward(self) -> bool:
        return self.reward == "learned"

    @property
    def ppo(self) -> bool:
        return "agent" in self.stages


_REWARD_STAGES = ("reward", "fidelity", "extrapolation")
METHODS: dict[str, Method] = {
    "trex": Method("trex", (*_REWARD_STAGES, "agent", "eval"), rankings=RANKINGS, reward="learned"),
    # BC → ε-greedy rollouts of the clone → ranked by noise, the demos above every bin → reward net → PPO
    "drex": Method("drex", ("bc", "noise-rollouts", *_REWARD_STAGES, "agent", "eval"), ("noise",), reward="learned"),
    "bc": Method("bc", ("bc", "eval")),  # the clone itself, evaluated
    "ppo-true": Method("ppo-true", ("agent", "eval"), reward="true", row_transform="clip"),  # the upper reference
    "constant": Method("constant", ("agent", "eval"), reward="constant", row_transform="constant"),  # survival bonus
    # Christiano et al. 2017: PPO on a 3-net ensemble fitted online to answers about its own clips; paid the
    # normalised ensemble mean
    "prefs": Method("prefs", ("agent", "eval"), reward="prefs", row_transform="normalized"),
    # Ho & Ermon 2016, the IRL baseline of T-REX's Table 1: PPO paid −log(1 − D(s, a)) by a discriminator trained
    # between rollouts on the demos' (s, a) against the policy's
    "gail": Method("gail", ("agent", "eval"), reward="gail", row_transform="gail"),
    # the uniform-random policy, evaluated by the same harness: what every normalised score divides by
    "random": Method("random", ("random-policy", "eval")),
}
NOT_BUILT: tuple[str, ...] = ()  # methods DESIGN.md names whose stages do not exist yet (refused in one line)


def get_method(name: str) -> Method:
    if name in NOT_BUILT:
        raise ConfigError(f"method {name!r} is not built yet in this version; available: {', '.join(METHODS)}")
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; valid: {', '.join(METHODS)}")
    return METHODS[name]
