"""Load an SB3 PPO ``.zip`` without unpickling anything.

SB3's ``PPO.load`` deserialises the ``:serialized:`` cloudpickle blobs in the zip's ``data`` JSON (policy class,
schedules, buffers, any added key): opening a zip would run whatever code it carries. Here the zip is only a
container: ``policy.pth`` is read with ``torch.load(weights_only=True)`` (tensors, no code) and loaded into a
``CnnPolicy`` rebuilt from what we already know: the game's spaces (``make_vec_env(game, 1, profile)``) and the
agent's ``card.json`` (its ``precision``: ``fp32`` → SB3's ``NatureCNN``, ``bf16`` → ``FastNatureCNN``). ``data``
is never parsed.

A foreign SB3 zip (no card of ours, e.g. an rl-zoo3 download) needs its pickles to be rebuilt; it loads through
``PPO.load`` only with ``trust_pickle=True`` (``--trust-pickle`` on the CLI), never by default.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO

from trex_bench.core.envs import make_vec_env
from trex_bench.core.errors import ConfigError, DataError
from trex_bench.core.io import read_json
from trex_bench.rl.precision import FastCnnPolicy, policy_kwargs

__all__ = ["find_agent_card", "read_agent_card", "load_ppo_zip", "read_zip_member", "SB3Policy"]

TRUST_HINT = (
    "pass --trust-pickle (trust_pickle=True) only for a file you trust: SB3's loader runs the code pickled in it"
)
_NO_SCHEDULES = {"learning_rate": 0.0, "lr_schedule": lambda _: 0.0, "clip_range": lambda _: 0.0}


def find_agent_card(zip_path: str | Path) -> Path | None:
    """The ``card.json`` that describes ``zip_path``: next to it, or one folder up for ``<run>/checkpoints/*.zip``."""
    p = Path(zip_path)
    candidates = [p.parent / "card.json"]
    if p.parent.name == "checkpoints":
        candidates.append(p.parent.parent / "card.json")
    return next((c for c in candidates if c.is_file()), None)


def read_agent_card(card_path: str | Path) -> dict[str, Any]:
    """Read and check an agent card (a JSON object of kind ``agent`` naming its game and env profile).

    Raises:
        ValueError: one line naming ``card_path``.
    """
    card = read_json(card_path)
    if not isinstance(card, dict) or card.get("kind") != "agent":
        raise DataError(f"{card_path} is not an agent card")
    for key in ("game", "profile"):
        if not isinstance(card.get(key), str):
            raise DataError(f"{card_path}: agent card names no {key}")
    return card


def _policy_kwargs(card: dict[str, Any], where: str) -> dict[str, Any] | None:
    """The ``policy_kwargs`` ``train_ppo`` used for the card's ``precision`` (missing: fp32, SB3's NatureCNN)."""
    try:
        return policy_kwargs(card.get("precision", "fp32"))
    except DataError as e:
        raise DataError(f"{where}: {e}") from None


def read_zip_member(path: Path, member: str) -> Any:
    """One ``.pth`` member of an SB3 zip (``policy.pth``, ``policy.optimizer.pth``) read with
    ``torch.load(weights_only=True)``: tensors and plain containers, no code runs.

    Raises:
        DataError: an unreadable zip, no such member, or a member that is not plain data (one line naming ``path``).
    """
    try:
        with zipfile.ZipFile(path) as zf:
            if member not in zf.namelist():
                raise DataError(f"{path}: not an SB3 agent zip (no {member} inside)")
            raw = zf.read(member)
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{path}: not a readable zip file ({e})") from e
    try:
        return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for a pickle of anything but tensors, RuntimeError for a torn file
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise DataError(f"{path}: {member} is not a plain tensor state dict ({type(e).__name__}: {first})") from e


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    """``policy.pth`` of an SB3 zip as a state dict of tensors (``weights_only=True``: no code runs)."""
    state = read_zip_member(path, "policy.pth")
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise DataError(f"{path}: policy.pth is not a state dict of named tensors")
    return state


def _check_fit(path: Path, want: dict[str, torch.Tensor], got: dict[str, torch.Tensor], what: str) -> None:
    """Refuse weights that do not fit the rebuilt policy, in one line."""
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    shapes = sorted(k for k in set(want) & set(got) if want[k].shape != got[k].shape)
    if missing or extra or shapes:
        parts = [
            f"{label} {len(keys)} (e.g. {keys[0]})"
            for label, keys in (("missing", missing), ("unexpected", extra), ("wrong shape", shapes))
            if keys
        ]
        raise DataError(f"{path}: its weights do not fit {what}: {'; '.join(parts)}; a foreign zip: {TRUST_HINT}")


def _trusted_load(path: Path, device: str | torch.device, custom: dict[str, Any]) -> PPO:
    """SB3's own loader (runs the zip's pickles); any failure becomes one line naming ``path``."""
    try:
        return PPO.load(path, device=device, custom_objects=custom)
    except Exception as e:  # another algorithm's zip, a torn file, a pickle that fails: SB3 raises many types
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise DataError(f"{path}: not a loadable SB3 PPO zip ({type(e).__name__}: {first})") from e


def load_ppo_zip(
    path: str | Path, card: dict[str, Any] | None, device: str | torch.device = "cpu", trust_pickle: bool = False
) -> PPO:
    """A PPO model able to act (``predict``, ``policy``) from an SB3 zip, unpickling nothing unless told to.

    Args:
        path: the ``.zip``.
        card: the agent card that describes it (``read_agent_card``); None for a foreign zip.
        device: torch device of the policy.
        trust_pickle: load through SB3's ``PPO.load``, which runs the pickles in the zip (needed for a foreign
            zip; never the default).

    Raises:
        ValueError: no card and no ``trust_pickle``; an unreadable zip; a ``policy.pth`` that is not plain tensors;
            weights that do not fit the policy the card describes. One line each, naming ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"SB3 agent file not found: {path}")
    if card is None and not trust_pickle:
        raise DataError(
            f"{path}: no agent card.json next to it (nor one folder up for a checkpoint), so its "
            f"architecture is unknown; to load a foreign SB3 zip, {TRUST_HINT}"
        )
    if card is None:
        return _trusted_load(path, device, _NO_SCHEDULES)
    probe = make_vec_env(card["game"], 1, card["profile"])
    obs_space, act_space = probe.observation_space, probe.action_space
    probe.close()
    if trust_pickle:
        return _trusted_load(path, device, {**_NO_SCHEDULES, "observation_space": obs_space, "action_space": act_space})
    state = _read_weights(path)
    kwargs = _policy_kwargs(card, str(path))
    # PPO.load's own recipe, with every unpickled value replaced by one we rebuild: an un-set-up PPO, then its policy.
    model = PPO(FastCnnPolicy, env=None, device=device, policy_kwargs=kwargs, _init_setup_model=False)
    model.observation_space, model.action_space = obs_space, act_space
    model.n_envs = int((card.get("config") or {}).get("n_envs", 1))
    model.num_timesteps = int(card.get("steps", 0))
    model.policy = model.policy_class(obs_space, act_space, lambda _: 0.0, **model.policy_kwargs)
    what = f"a {card.get('precision', 'fp32')} CnnPolicy for {card['game']} ({act_space.n} actions)"
    _check_fit(path, model.policy.state_dict(), state, what)
    model.policy.load_state_dict(state)
    model.policy = model.policy.to(model.device).eval()
    return model


class SB3Policy:
    """A Stable-Baselines3 PPO agent saved as a ``.zip``, acting stochastically as in T-REX.

    A zip of ours (``card.json`` next to it, or one folder up for ``<run>/checkpoints/ppo_N_steps.zip``) is loaded
    without unpickling anything. A foreign zip without a card loads through SB3's
    ``PPO.load``, which runs the code pickled inside it, only with ``trust_pickle=True``.

    Raises:
        ValueError: a missing file, a card of another game, no card without ``trust_pickle``, or weights that do
            not fit.
    """

    def __init__(
        self,
        path: str | Path,
        device: str = "cpu",
        deterministic: bool = False,
        *,
        game: str | None = None,
        trust_pickle: bool = False,
    ) -> None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"SB3 policy file not found: {path}")
        card_path = find_agent_card(path)
        card = read_agent_card(card_path) if card_path is not None else None
        if card is not None and game is not None and card["game"] != game:
            raise ConfigError(f"{path} is an agent for {card['game']} (per {card_path}), not {game}")
        self.model = load_ppo_zip(path, card, device, trust_pickle=trust_pickle)
        self.n_actions = int(self.model.action_space.n)
        self.path, self.deterministic = path, deterministic

    def act(self, obs: np.ndarray) -> np.ndarray:
        actions, _ = self.model.predict(obs, deterministic=self.deterministic)
        return np.asarray(actions, dtype=np.int64).reshape(len(obs))

    def describe(self) -> str:
        return f"sb3:{self.path}"
