"""GAIL's discriminator D(s, a), its loss, the reward it pays, and its state on disk (Ho & Ermon 2016).

    logit(s, a) = Linear(64→1) ∘ leaky_relu ∘ Linear(784 + |A| → 64) ( [MaskedTrunk(s), one_hot(a)] )
    D(s, a) = σ(logit) = P(expert | s, a)

The trunk is the T-REX reward net's (``trex_bench.reward.net.MaskedTrunk``): the same 1/255 scale, the same masked
score/lives rows and the same four convolutions, so GAIL sees exactly what T-REX's reward sees, plus the action.
The policy is paid r(s, a) = −log(1 − D(s, a)) = softplus(logit) ≥ 0, increasing in D: imitation's GAIL reward
(``RewardNetFromDiscriminatorLogit``: −log σ(−logit)), Ho & Ermon's cost log D with the labels swapped so that
1 = expert.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trex_bench.core.errors import DataError
from trex_bench.reward.net import FEATURES, MaskedTrunk

__all__ = [
    "Discriminator",
    "gail_reward",
    "discriminator_loss",
    "save_tensors",
    "load_tensors",
    "optimizer_tensors",
    "load_optimizer",
]


class Discriminator(MaskedTrunk):
    """logit of P(expert | s, a) for uint8 stacks [N, 4, 84, 84] and action indices [N].

    Args:
        game: the game whose score/lives rows are masked (as the reward net masks them).
        n_actions: size of the game's action set (the one-hot width); 0: D(s) alone (the observation-only variant).
        arch: the trunk's width (``"trex"`` 16 or ``"drex"`` 32 first-conv filters).
    """

    def __init__(self, game: Any, n_actions: int, arch: str = "trex") -> None:
        super().__init__(game, arch)  # type: ignore[arg-type]
        if n_actions < 0:
            raise DataError(f"n_actions must be >= 0, got {n_actions}")
        self.n_actions = n_actions
        self.fc1 = nn.Linear(FEATURES + n_actions, 64)
        self.fc2 = nn.Linear(64, 1)

    def forward(self, stacks: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Logits float [N]; the action is one-hot encoded and concatenated after the convolutions."""
        x = self.features(stacks)
        if self.n_actions:
            x = torch.cat([x, F.one_hot(actions.long(), self.n_actions).to(x.dtype)], dim=1)
        return self.fc2(F.leaky_relu(self.fc1(x))).squeeze(1)


def gail_reward(logits: torch.Tensor) -> torch.Tensor:
    """r = −log(1 − D) = softplus(logit): ≥ 0, increasing in D, finite for any logit (no log(0)).

    >>> gail_reward(torch.tensor([-30.0, 0.0, 30.0])).tolist()  # D ≈ 0, D = ½, D ≈ 1
    [9.357622912219837e-14, 0.6931471824645996, 30.0]
    """
    return F.softplus(logits)


def discriminator_loss(logits: torch.Tensor, expert: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    """Binary cross-entropy of D against ``expert`` (1 demo, 0 policy), targets smoothed to (1 − ε, ε).

    Ho & Ermon 2016 Algorithm 1 step 4 (the discriminator's logistic loss), labels as imitation's GAIL (expert = 1).
    """
    target = expert.to(logits.dtype) * (1.0 - 2.0 * smoothing) + smoothing
    return F.binary_cross_entropy_with_logits(logits, target)


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """An optimiser's state as flat named tensors (``state.<param>.<name>``) and its JSON-able param groups."""
    state = opt.state_dict()
    tensors = {f"state.{i}.{k}": v for i, per in state["state"].items() for k, v in per.items()}
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} for g in state["param_groups"]]
    return tensors, groups


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]]) -> None:
    """Restore what ``optimizer_tensors`` returned (``betas`` back to a tuple, as Adam writes it)."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        _, i, name = key.split(".", 2)
        state.setdefault(int(i), {})[name] = value
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in groups]
    opt.load_state_dict({"state": state, "param_groups": groups})


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Write named tensors to a ``.safetensors`` file atomically (contiguous CPU copies; no pickle)."""
    from safetensors.torch import save_file

    from trex_bench.core.io import atomic_write

    flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda p: save_file(flat, str(p)), suffix=".safetensors")


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` file; a missing or torn file is a ``DataError`` naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise DataError(f"{path} is missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise DataError(f"{path}: not a readable safetensors file ({e})") from e
