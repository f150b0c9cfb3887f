"""The authors' released reward nets (T-REX, T-REX with MTurk labels, D-REX) as our ``RewardNet``.

The ``.params`` files are PyTorch ``state_dict``s copied unchanged from the authors' repositories into
``shared/reference`` (its README lists the source repository and commit of each folder). Their keys
(``conv1`` … ``conv4``, ``fc1``, ``fc2``) are exactly ours, and our net applies the same input convention
(/255, score rows zeroed, PAPERS.md "Reward net"), so loading is a checked ``load_state_dict``: every failure
(missing file, game without a released net, a file that is not a state dict, wrong keys or shapes) is a
ValueError naming the file, never a half-loaded net.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch

from trex_bench.core.errors import DataError
from trex_bench.core.games import Game, get_game
from trex_bench.reward.net import RewardNet, save_model

__all__ = ["WHICH", "SOURCES", "official_path", "load_official", "import_official"]

Which = Literal["trex", "mturk", "drex"]

# Where each family of released nets came from: shared/reference/README.md, table "folder | source @ commit".
SOURCES: dict[str, dict[str, str]] = {
    "trex": {
        "repo": "hiwonjoon/ICML2019-TREX",
        "commit": "44f92b61ca6c79ac22d468382d4f2fbee164fb7a",
        "original_path": "atari/learned_models/icml_learned_rewards/{file}",
        "paper": "Brown et al., ICML 2019 (T-REX)",
    },
    "mturk": {
        "repo": "hiwonjoon/ICML2019-TREX",
        "commit": "44f92b61ca6c79ac22d468382d4f2fbee164fb7a",
        "original_path": "atari/learned_models/icml_learned_rewards/{file}",
        "paper": "Brown et al., ICML 2019 (T-REX, rankings from MTurk human labels)",
    },
    "drex": {
        "repo": "dsbrown1331/CoRL2019-DREX",
        "commit": "23ffdd0982cb38f438a9dd84408e290f3c1b3bcc",
        "original_path": "drex-atari/learned_models/{file}",
        "paper": "Brown et al., CoRL 2019 (D-REX)",
    },
}
WHICH: tuple[str, ...] = tuple(SOURCES)

# The 8 games of T-REX Table 1 have T-REX and MTurk nets; D-REX released all of them but Hero (reference README).
_TREX_GAMES = ("beamrider", "breakout", "enduro", "hero", "pong", "qbert", "seaquest", "spaceinvaders")
_RELEASED: dict[str, tuple[str, ...]] = {
    "trex": _TREX_GAMES,
    "mturk": _TREX_GAMES,
    "drex": tuple(g for g in _TREX_GAMES if g != "hero"),
}
_ARCH: dict[str, Literal["trex", "drex"]] = {"trex": "trex", "mturk": "trex", "drex": "drex"}


def _check_which(which: str) -> str:
    if which not in SOURCES:
        raise DataError(f"unknown released-net family {which!r}; valid: {', '.join(WHICH)}")
    return which


def official_path(game: Game | str, which: Which, reference_dir: str | Path) -> Path:
    """Path of the released ``.params`` file of ``game`` and family ``which`` under ``reference_dir``.

    Raises:
        ValueError: unknown family, or the authors released no net of that family for that game.
    """
    g = get_game(game) if isinstance(game, str) else game
    which = _check_which(which)  # type: ignore[assignment]
    if g.id not in _RELEASED[which]:
        raise DataError(
            f"the authors released no {which} reward net for {g.id}; games with one: {', '.join(_RELEASED[which])}"
        )
    ref = Path(reference_dir)
    if which == "trex":
        # Enduro's T-REX net was trained on whole trajectories, hence its own file name (T-REX §5.2).
        name = "enduro_trajs_masking.params" if g.id == "enduro" else f"{g.id}_progress_masking.params"
        return ref / "trex" / "progress_masking" / name
    if which == "mturk":
        return ref / "trex" / "mturk" / f"{g.id}_mturk.params"
    return ref / "drex" / "learned_models" / f"{g.id}_five_bins_noop_earlystop.params"


def load_official(game: Game | str, which: Which, reference_dir: str | Path) -> RewardNet:
    """Load one of the authors' released reward nets into a ``RewardNet`` (eval mode, CPU).

    Args:
        game: the game.
        which: ``"trex"`` (progress-masking T-REX nets), ``"mturk"`` (T-REX trained on MTurk labels) or
            ``"drex"`` (D-REX five-bin no-op nets).
        reference_dir: the ``shared/reference`` folder.

    Raises:
        ValueError: naming the file, when it is missing, the game has no released net of that family, the file
            is not a readable state dict, or its keys or tensor shapes do not fit the architecture.
    """
    g = get_game(game) if isinstance(game, str) else game
    path = official_path(g, which, reference_dir)
    if not path.is_file():
        raise DataError(f"{path}: released {which} reward net for {g.id} not found (is reference_dir right?)")
    try:
        # weights_only: never unpickle arbitrary objects from a file we did not write.
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError, EOFError from a corrupt or foreign file
        raise DataError(f"{path}: not a loadable PyTorch state dict ({type(e).__name__}: {e})") from e
    if not isinstance(sd, Mapping) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise DataError(f"{path}: expected a state dict (name → tensor), got {type(sd).__name__}")
    net = RewardNet(g, _ARCH[which])
    want = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    got = {str(k): tuple(v.shape) for k, v in sd.items()}
    if set(got) != set(want):
        missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
        raise DataError(
            f"{path}: state dict keys do not fit a {_ARCH[which]} reward net (missing {missing}, unexpected {extra})"
        )
    bad = [f"{k}: {got[k]} (expected {want[k]})" for k in want if got[k] != want[k]]
    if bad:
        raise DataError(f"{path}: tensor shapes do not fit a {_ARCH[which]} reward net: {'; '.join(bad)}")
    net.load_state_dict({k: v.float() for k, v in sd.items()})
    return net.eval()


def import_official(game: Game | str, which: Which, reference_dir: str | Path, out_dir: str | Path) -> Path:
    """Convert a released net into our reward-model folder (``model.safetensors`` + ``card.json``).

    The card records the source repository, commit and original path, so every later result traces back to the
    authors' file; the env profile is ``"paper"`` because the nets were trained on NoFrameskip-v4 frames with the
    DeepMind wrappers (reference README, "Input the nets expect").

    Returns:
        ``out_dir``.

    Raises:
        ValueError: ``out_dir`` holds anything but a reward model (``core.io.claim_output``), or ``load_official``'s
            refusals; nothing is written.
    """
    from trex_bench.core.io import claim_output

    claim_output(out_dir, "reward_model")
    g = get_game(game) if isinstance(game, str) else game
    net = load_official(g, which, reference_dir)
    path = official_path(g, which, reference_dir)
    src = SOURCES[which]
    card = {
        "source": "official",
        "which": which,
        "profile": "paper",
        "source_repo": src["repo"],
        "source_commit": src["commit"],
        "source_path": src["original_path"].format(file=path.name),
        "source_paper": src["paper"],
        "source_file": path.name,
    }
    return save_model(net, out_dir, card)
