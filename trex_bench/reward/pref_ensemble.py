"""The preference reward model of Christiano et al. 2017: an ensemble fitted to labels, its queries, its scale.

* ``LabelBuffer``: the newest labels (A.2: only the last 3,000) and each member's bootstrap of them. §2.2.3 fits
  each member on |D| labels drawn from D with replacement; with labels arriving one by one this is the online
  bootstrap (Oza & Russell 2001): every label enters member k's sample Poisson(1) times. The ≈ 1/e of labels a member
  never sees are its held-out set (§2.2.3 holds out 1/e).
* ``preference_loss``: Bradley-Terry cross-entropy (§2.2.3 eq. 1, T-REX eq. 1) over the two clips' summed r̂, with
  soft targets (an ``equal`` answer is ½) and the §2.2.3 assumption that a labeler answers at random with
  probability ε: P̂ = (1 − ε)·softmax + ε/2.
* ``PreferenceEnsemble``: K ``RewardNet``s and their optimisers; one minibatch scores every frame stack of its
  clips in one forward pass per member and sums them per clip with ``index_add_``.
* ``select_queries``: §2.2.4: sample ``candidates_factor`` × n candidate pairs of recent clips and ask the n on which
  the members' P̂(b ≻ a) varies most.
* ``EnsembleNormalizer``: the reward PPO is paid: each member standardised over recent rollouts, averaged (§2.2.3),
  and scaled to zero mean and a fixed standard deviation (§2.2.1; A.2: 0.05).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from trex_bench.core.games import Game
from trex_bench.reward.bradley_terry import bradley_terry_loss, init_net
from trex_bench.reward.clip_pairs import Clip
from trex_bench.reward.labels import Label
from trex_bench.reward.prefs_config import PrefsConfig
from trex_bench.reward.segments import ClipBank, RolloutStore, clip_stacks

__all__ = ["PaidReward", "LabelBuffer", "preference_loss", "PreferenceEnsemble", "select_queries", "EnsembleNormalizer"]


class LabelBuffer:
    """The newest ``capacity`` usable labels (answered, not skipped) and each member's bootstrap weights."""

    def __init__(self, capacity: int, n_members: int) -> None:
        self.capacity, self.n_members = capacity, n_members
        self.labels: list[Label] = []
        self.weights = np.zeros((n_members, 0), dtype=np.int64)

    def add(self, labels: Sequence[Label], rng: np.random.Generator, weights: np.ndarray | None = None) -> None:
        """Append labels with Poisson(1) bootstrap counts per member (or the given [K, n] ``weights``)."""
        labels = [lab for lab in labels if lab.target is not None]
        if not labels:
            return
        w = rng.poisson(1.0, size=(self.n_members, len(labels))) if weights is None else np.asarray(weights)
        self.labels += labels
        self.weights = np.concatenate([self.weights, w.astype(np.int64)], axis=1)
        drop = max(len(self.labels) - self.capacity, 0)
        self.labels, self.weights = self.labels[drop:], self.weights[:, drop:]

    def __len__(self) -> int:
        return len(self.labels)

    def sample(self, member: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` label indices drawn from member ``member``'s bootstrap sample (with replacement)."""
        w = self.weights[member].astype(np.float64)
        if w.sum() == 0:
            w = np.ones_like(w)
        return rng.choice(len(w), size=n, p=w / w.sum())

    def clips(self) -> set[Clip]:
        """Every clip a buffered label names."""
        return {c for lab in self.labels for c in (lab.left, lab.right)}

    def targets(self, idx: np.ndarray) -> np.ndarray:
        """P(right ≻ left) targets float32 [len(idx)]."""
        return np.array([self.labels[i].target for i in idx], dtype=np.float32)


def preference_loss(ret_a: torch.Tensor, ret_b: torch.Tensor, target_b: torch.Tensor, eps: float) -> torch.Tensor:
    """Mean cross-entropy of P̂ = (1 − ε)·softmax([R_a, R_b]) + ε/2 against the soft target [1 − μ_b, μ_b]."""
    target = torch.stack([1 - target_b, target_b], dim=1)
    if eps == 0:
        return bradley_terry_loss(ret_a, ret_b, target)  # cross-entropy with probability targets
    p = torch.softmax(torch.stack([ret_a, ret_b], dim=1).float(), dim=1) * (1 - eps) + eps / 2
    return -(target * p.log()).sum(1).mean()


class PreferenceEnsemble:
    """K reward nets, each with its own Adam; scored and trained on uint8 frame stacks."""

    def __init__(
        self, game: Game | str, cfg: PrefsConfig, generator: torch.Generator, device: str | torch.device = "cpu"
    ) -> None:
        self.cfg, self.device = cfg, torch.device(device)
        self.members = [init_net(game, cfg.arch, generator).to(self.device) for _ in range(cfg.ensemble_size)]
        self.optimizers = [
            torch.optim.Adam(m.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay) for m in self.members
        ]
        for m in self.members:
            m.eval()

    @torch.no_grad()
    def score(self, stacks: np.ndarray, batch: int = 512) -> np.ndarray:
        """Every member's r̂ of uint8 stacks [N, 4, 84, 84]: float32 [K, N]."""
        out = np.empty((len(self.members), len(stacks)), dtype=np.float32)
        for i in range(0, len(stacks), batch):
            x = torch.as_tensor(np.ascontiguousarray(stacks[i : i + batch]), device=self.device)
            for k, m in enumerate(self.members):
                out[k, i : i + batch] = m(x).float().cpu().numpy()
        return out

    def clip_returns(self, member: int, clips: np.ndarray) -> torch.Tensor:
        """Σ r̂ of each clip (frames uint8 [C, L + 3, 84, 84]) under ``member``, with gradients: float [C].

        All C·L stacks go through the net in one forward pass; ``index_add_`` sums them per clip.
        """
        n_clips, length = clips.shape[0], clips.shape[1] - 3
        stacks = torch.as_tensor(np.ascontiguousarray(clip_stacks(clips)).reshape(-1, 4, 84, 84), device=self.device)
        r = self.members[member](stacks).float()
        owner = torch.arange(n_clips, device=self.device).repeat_interleave(length)
        return torch.zeros(n_clips, device=self.device).index_add_(0, owner, r)

    def train(self, buffer: LabelBuffer, clips: ClipBank, pairs: int, rng: np.random.Generator) -> dict[str, float]:
        """Each member takes ``pairs`` labels from its bootstrap sample, in minibatches of ``batch_pairs``.

        Returns the mean loss, the members' accuracy on their strict training labels before each step, and the
        pairs each trained on.
        """
        if not len(buffer) or pairs < 1:
            return {}
        losses, hits, strict = [], 0, 0
        for k, (net, opt) in enumerate(zip(self.members, self.optimizers, strict=True)):
            net.train()
            for start in range(0, pairs, self.cfg.batch_pairs):
                idx = buffer.sample(k, min(self.cfg.batch_pairs, pairs - start), rng)
                frames = np.stack(
                    [clips.get(c).frames for i in idx for c in (buffer.labels[i].left, buffer.labels[i].right)]
                )
                rets = self.clip_returns(k, frames).view(-1, 2)
                target = torch.as_tensor(buffer.targets(idx), device=self.device)
                loss = preference_loss(rets[:, 0], rets[:, 1], target, self.cfg.random_response)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(loss.item())
                sure = target != 0.5
                hits += int(((rets[:, 1] > rets[:, 0]) == (target > 0.5))[sure].sum())
                strict += int(sure.sum())
            net.eval()
        return {
            "loss": float(np.mean(losses)),
            "train_accuracy": hits / strict if strict else math.nan,
            "train_pairs": float(pairs),
        }

    # -- state (safetensors + JSON, no pickle) ------------------------------------------------------------------
    def tensors(self) -> dict[str, torch.Tensor]:
        """Weights and Adam moments of every member as flat named tensors."""
        out: dict[str, torch.Tensor] = {}
        for k, (net, opt) in enumerate(zip(self.members, self.optimizers, strict=True)):
            out.update({f"net{k}.{n}": t.detach().cpu().contiguous() for n, t in net.state_dict().items()})
            for pid, st in opt.state_dict()["state"].items():
                out.update({f"opt{k}.{pid}.{n}": torch.as_tensor(t).detach().cpu().contiguous() for n, t in st.items()})
        return out

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what ``tensors`` returned (missing or misshapen tensors raise)."""
        for k, (net, opt) in enumerate(zip(self.members, self.optimizers, strict=True)):
            net.load_state_dict({n[len(f"net{k}.") :]: t for n, t in tensors.items() if n.startswith(f"net{k}.")})
            state: dict[int, dict[str, torch.Tensor]] = {}
            for name, t in tensors.items():
                if name.startswith(f"opt{k}."):
                    pid, field = name[len(f"opt{k}.") :].split(".", 1)
                    state.setdefault(int(pid), {})[field] = t.to(self.device) if field != "step" else t
            sd = opt.state_dict()
            opt.load_state_dict({"state": state, "param_groups": sd["param_groups"]})


def select_queries(
    store: RolloutStore, length: int, n: int, factor: int, version: int, rng: np.random.Generator
) -> list[tuple[int, int, int, int, float, float]]:
    """§2.2.4's queries: ``factor``·n random candidate pairs of stored clips, the n with the highest variance of the
    members' P̂(b ≻ a) = σ(R_b − R_a) (each R a sum of r̂ the wrapper recorded under reward ``version``).

    Returns up to n tuples ``(env_a, end_a, env_b, end_b, mean P̂(b ≻ a), variance)``, most disputed first; fewer
    when the store holds fewer distinct pairs. Two clips of one env that overlap are never paired.
    """
    env, end = store.candidates(length, version)
    if len(env) < 2 or n < 1:
        return []
    m = factor * n
    i = rng.integers(len(env), size=m)
    j = rng.integers(len(env) - 1, size=m)
    j += j >= i  # two different clips
    apart = (env[i] != env[j]) | (np.abs(end[i] - end[j]) >= length)  # not two views of the same few steps
    i, j = i[apart], j[apart]
    r_a, r_b = store.returns(env[i], end[i], length), store.returns(env[j], end[j], length)
    p = 1.0 / (1.0 + np.exp(np.clip(r_a - r_b, -50, 50)))  # [K, m]
    var, mean = p.var(0), p.mean(0)
    order = np.argsort(-var, kind="stable")
    _, first = np.unique(np.stack([np.minimum(i, j), np.maximum(i, j)], 1)[order], axis=0, return_index=True)
    keep = order[np.sort(first)][:n]
    return [
        (int(env[i[c]]), int(end[i[c]]), int(env[j[c]]), int(end[j[c]]), float(mean[c]), float(var[c])) for c in keep
    ]


class EnsembleNormalizer:
    """r = std · (mean_k (r̂_k − μ_k) / σ_k) / s, where μ_k, σ_k, s are fitted on recent stacks' r̂ so that r
    has mean 0 and standard deviation ``std`` there."""

    def __init__(self, n_members: int, std: float) -> None:
        self.std = float(std)
        self.mu, self.sigma, self.scale = np.zeros(n_members), np.ones(n_members), 1.0

    def fit(self, rhat: np.ndarray) -> None:
        """Fit to members' r̂ [K, N] of recent stacks."""
        self.mu = rhat.mean(1).astype(np.float64)
        self.sigma = np.maximum(rhat.std(1).astype(np.float64), 1e-8)
        z = ((rhat - self.mu[:, None]) / self.sigma[:, None]).mean(0)
        self.scale = float(max(z.std(), 1e-8))

    def __call__(self, rhat: np.ndarray) -> np.ndarray:
        """The paid reward float32 [N] of members' r̂ [K, N]."""
        z = ((rhat - self.mu[:, None]) / self.sigma[:, None]).mean(0)
        return (self.std * z / self.scale).astype(np.float32)

    def state(self) -> dict[str, Any]:
        """JSON-able statistics."""
        return {"mu": self.mu.tolist(), "sigma": self.sigma.tolist(), "scale": self.scale, "std": self.std}

    def restore(self, state: dict[str, Any]) -> None:
        """Restore ``state``."""
        self.mu, self.sigma = np.asarray(state["mu"], float), np.asarray(state["sigma"], float)
        self.scale, self.std = float(state["scale"]), float(state["std"])


class PaidReward:
    """What the loop pays PPO, as a per-frame scorer (``per_frame``, like ``RewardEnsemble``): the normalised
    ensemble mean of ``normalizer`` over ``ensemble``'s members. The extrapolation benchmark scores a finished
    run's reward with it."""

    def __init__(self, game: Game, ensemble: PreferenceEnsemble, normalizer: EnsembleNormalizer) -> None:
        self.game, self.ensemble, self.normalizer = game, ensemble, normalizer

    def per_frame(self, stacks: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """The paid r float32 [N] of uint8 stacks [N, 4, 84, 84]."""
        return torch.from_numpy(self.normalizer(self.ensemble.score(stacks.numpy(), batch_size)))
