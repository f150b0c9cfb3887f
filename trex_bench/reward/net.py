"""The T-REX / D-REX image reward net r(s): one definition, both widths (PAPERS.md "Reward net").

    Conv(4→w, 7, s3) → Conv(w→16, 5, s2) → Conv(16→16, 3, s1) → Conv(16→16, 3, s1)
    → Linear(784→64) → Linear(64→1)

with leaky_relu between layers; w = 16 (T-REX) or 32 (D-REX). The net takes uint8 stacks [N, 4, 84, 84], scales
them by 1/255 and zeroes the game's score/lives rows itself, so callers never pre-process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from trex_bench.core.errors import DataError
from trex_bench.core.games import Game, get_game

__all__ = ["MaskedTrunk", "RewardNet", "FEATURES", "RewardEnsemble", "WIDTHS", "save_model", "load_model"]

WIDTHS = {"trex": 16, "drex": 32}  # first-conv filters: T-REX released nets 16, D-REX 32 (shared/reference/README.md)
FEATURES = 784  # 16 channels × 7 × 7 after the four convolutions of an 84×84 input


class MaskedTrunk(nn.Module):
    """The reward net's input convention and convolutions: uint8 stacks [N, 4, 84, 84] → features [N, 784].

    It scales by 1/255, zeroes the game's score/lives rows and runs the four convolutions with leaky_relu; the heads
    on top differ: ``RewardNet`` (r(s)) and GAIL's discriminator (``trex_bench.rl.discriminator``, D(s, a)).

    Args:
        game: the game whose score/lives rows are masked.
        arch: ``"trex"`` (16 first-conv filters) or ``"drex"`` (32).
    """

    def __init__(self, game: Game | str, arch: Literal["trex", "drex"] = "trex") -> None:
        super().__init__()
        if arch not in WIDTHS:
            raise DataError(f"unknown reward-net architecture {arch!r}; valid: {', '.join(WIDTHS)}")
        self.game = get_game(game) if isinstance(game, str) else game
        self.arch = arch
        w = WIDTHS[arch]
        self.conv1 = nn.Conv2d(4, w, 7, stride=3)
        self.conv2 = nn.Conv2d(w, 16, 5, stride=2)
        self.conv3 = nn.Conv2d(16, 16, 3, stride=1)
        self.conv4 = nn.Conv2d(16, 16, 3, stride=1)
        mask = torch.ones(84, 84)
        mask[list(self.game.mask_rows)] = 0.0
        # 1/255 and the score mask folded into one multiplier (a buffer: moves with .to(device), not trained).
        self.register_buffer("input_scale", mask / 255.0, persistent=False)

    def features(self, stacks: torch.Tensor) -> torch.Tensor:
        """Flattened conv features float [N, ``FEATURES``] of uint8 (or float 0–255) stacks [N, 4, 84, 84]."""
        x = stacks.to(self.input_scale.dtype) * self.input_scale
        x = F.leaky_relu(self.conv1(x))
        x = F.leaky_relu(self.conv2(x))
        x = F.leaky_relu(self.conv3(x))
        x = F.leaky_relu(self.conv4(x))
        return x.flatten(1)


class RewardNet(MaskedTrunk):
    """Per-frame reward r(s) of a frame stack: ``MaskedTrunk`` → Linear(784→64) → Linear(64→1).

    Args:
        game: the game whose score/lives rows are masked.
        arch: ``"trex"`` (16 first-conv filters) or ``"drex"`` (32).
    """

    def __init__(self, game: Game | str, arch: Literal["trex", "drex"] = "trex") -> None:
        super().__init__(game, arch)
        self.fc1 = nn.Linear(FEATURES, 64)
        self.fc2 = nn.Linear(64, 1)

    def forward(self, stacks: torch.Tensor) -> torch.Tensor:
        """r(s) float [N] for uint8 (or float 0–255) stacks [N, 4, 84, 84]."""
        x = F.leaky_relu(self.fc1(self.features(stacks)))
        return self.fc2(x).squeeze(1)

    @torch.no_grad()
    def per_frame(self, stacks: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """r(s) float [N] without gradients, in batches (accepts a numpy array or a tensor)."""
        device = self.input_scale.device
        stacks = torch.as_tensor(stacks)
        if stacks.ndim != 4 or tuple(stacks.shape[1:]) != (4, 84, 84):
            raise DataError(f"expected stacks [N, 4, 84, 84], got {tuple(stacks.shape)}")
        out = [self(stacks[i : i + batch_size].to(device)) for i in range(0, len(stacks), batch_size)]
        return torch.cat(out).float().cpu() if out else torch.zeros(0)


class RewardEnsemble(nn.Module):
    """K reward nets of one game; r(s) is the members' mean, their spread is reported (Christiano et al. 2017).

    A single net is an ensemble of one, so every stage loads and uses reward models the same way.
    """

    def __init__(self, members: list[RewardNet]) -> None:
        super().__init__()
        if not members:
            raise DataError("an ensemble needs at least one reward net")
        if len({(m.game.id, m.arch) for m in members}) != 1:
            raise DataError("ensemble members must share game and architecture")
        self.members = nn.ModuleList(members)
        self.game, self.arch = members[0].game, members[0].arch

    def forward(self, stacks: torch.Tensor) -> torch.Tensor:
        """Mean r(s) float [N] over members."""
        return torch.stack([m(stacks) for m in self.members]).mean(0)

    @torch.no_grad()
    def per_frame(self, stacks: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Mean r(s) float [N] without gradients."""
        return self.per_frame_members(stacks, batch_size).mean(0)

    @torch.no_grad()
    def per_frame_members(self, stacks: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """r(s) of every member, float [K, N]."""
        return torch.stack([m.per_frame(stacks, batch_size) for m in self.members])


MODEL_SCHEMA = 1


def save_model(model: RewardNet | RewardEnsemble, out: str | Path, card: dict[str, Any]) -> Path:
    """Write a reward-model folder: ``model.safetensors`` + ``card.json`` (DESIGN.md "Reward model").

    ``card`` holds what the caller knows (env profile, training-data hash, config, metrics); architecture, game,
    mask, input convention, ensemble size and versions are filled in here. Both files are written atomically.
    """
    from safetensors.torch import save_file

    from trex_bench.core.io import atomic_write, versions, write_json

    ens = model if isinstance(model, RewardEnsemble) else RewardEnsemble([model])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in ens.state_dict().items()}
    atomic_write(out / "model.safetensors", lambda p: save_file(tensors, str(p)), suffix=".safetensors")
    full = dict(card)
    full.update(
        kind="reward_model",
        schema_version=MODEL_SCHEMA,
        arch=ens.arch,
        game=ens.game.id,
        ensemble_size=len(ens.members),
        mask_rows=[ens.game.mask_top, ens.game.mask_bottom],
        input="uint8 stacks [N, 4, 84, 84], channels first; the net scales by 1/255 and masks score rows itself",
        versions=versions(),
    )
    write_json(out / "card.json", full)
    return out


def load_model(
    folder: str | Path, game: Game | str | None = None, profile: str | None = None, device: str | torch.device = "cpu"
) -> tuple[RewardEnsemble, dict[str, Any]]:
    """Load a reward-model folder written by ``save_model``.

    Args:
        folder: the model folder.
        game: when given, refuse a model trained for another game.
        profile: when given, refuse a model whose card names another env profile.
        device: where to put the weights.

    Returns:
        ``(model, card)``, the model in eval mode.

    Raises:
        ValueError: missing files, a malformed card or one of another kind/game/profile, weights that do not fit,
            or NaN/inf weights (one line each).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from trex_bench.core.io import read_json

    folder = Path(folder)
    for name in ("card.json", "model.safetensors"):
        if not (folder / name).exists():
            raise DataError(f"{folder}: not a reward model ({name} is missing)")
    card = read_json(folder / "card.json")
    if not isinstance(card, dict) or card.get("kind") != "reward_model":
        raise DataError(f"{folder}/card.json is not a reward-model card")
    for key, typ in (("game", str), ("arch", str), ("ensemble_size", int)):
        if not isinstance(card.get(key), typ):
            raise DataError(f"{folder}/card.json: reward-model card has no valid {key!r}")
    if game is not None:
        want = game.id if isinstance(game, Game) else get_game(game).id
        if want != card["game"]:
            raise DataError(f"{folder} is a reward model for {card['game']}, not {want}")
    if profile is not None and card.get("profile") not in (None, profile):
        raise DataError(f"{folder} was trained under env profile {card.get('profile')!r}, not {profile!r}")
    ens = RewardEnsemble([RewardNet(card["game"], card["arch"]) for _ in range(int(card["ensemble_size"]))])
    try:
        weights = load_file(str(folder / "model.safetensors"))
        ens.load_state_dict(weights)
    except (SafetensorError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(
            f"{folder}/model.safetensors does not fit a {card['arch']} ensemble of {card['ensemble_size']}: {first}"
        ) from e
    bad = [k for k, v in weights.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:  # NaN/inf weights would score every frame NaN: a NaN report, or PPO dying mid-run
        raise DataError(f"{folder}/model.safetensors: non-finite weights in {len(bad)} tensor(s) (first: {bad[0]})")
    return ens.to(device).eval(), card
