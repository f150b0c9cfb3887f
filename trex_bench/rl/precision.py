"""The policy's numeric format on this machine: channels-last convolutions, fp32 or bf16 autocast, chosen by measuring.

Channels-last convolutions are faster on every CPU measured here; bf16 autocast is ~1.5× faster where the CPU has
native bf16 kernels (avx512_bf16, AMX) and many times *slower* where it has not (docs/measurements.md, "PPO
numerics"). So the choice is made by a probe on the machine at hand, never assumed: ``probe_precision`` times a few
update steps of each mode and caches the winner per (CPU model, torch version, threads, device) under
``~/.cache/trex_bench/precision.json``, with the margin it won by, the load average it was measured under and when.

A probe measured on a busy machine can choose the slower mode (four other processes on 2 cores once made bf16 look
slower than fp32 on a CPU where it is 1.9x faster idle), so a cached choice is used only while it is robust: a margin
of at least :data:`CLEAR_MARGIN`, a load average no higher than the number of cores, and younger than
:data:`MAX_AGE_S`; otherwise ``auto`` probes again. :func:`precision_line` says in one line which mode runs and why.

bf16 autocast covers the convolutional trunk and its 3136→512 linear layer only (``FastNatureCNN``): the features
come back as fp32, so the policy and value heads, the softmax, the log-probabilities and the losses stay fp32, and the
master weights and Adam state are fp32 throughout.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.policies import ActorCriticCnnPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN

from trex_bench.core.errors import DataError
from trex_bench.core.types import PRECISIONS

__all__ = [
    "PRECISIONS",
    "FastCnnPolicy",
    "FastNatureCNN",
    "policy_kwargs",
    "probe_precision",
    "resolve_precision",
    "precision_line",
    "CLEAR_MARGIN",
    "MAX_AGE_S",
    "bf16_supported",
]


class FastNatureCNN(NatureCNN):
    """SB3's ``NatureCNN`` (Mnih et al. 2015) with its input in channels-last memory format and an optional bf16
    autocast of the trunk; the output features are always fp32. The maths is SB3's: same layers, same init.

    >>> import gymnasium as gym
    >>> net = FastNatureCNN(gym.spaces.Box(0, 255, (4, 84, 84), dtype="uint8"), bf16=True)
    >>> net(torch.zeros(2, 4, 84, 84)).dtype
    torch.float32
    """

    def __init__(self, observation_space: gym.Space, features_dim: int = 512, bf16: bool = False) -> None:
        super().__init__(observation_space, features_dim)
        self.bf16 = bf16
        # The weights go channels-last with the whole policy (``train_ppo``), after SB3's orthogonal init: that
        # init views each weight as a matrix, which a channels-last weight cannot be.

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        x = observations.contiguous(memory_format=torch.channels_last)
        ctx = torch.autocast(x.device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with ctx:
            features = self.linear(self.cnn(x))
        return features.float()


class FastCnnPolicy(ActorCriticCnnPolicy):
    """SB3's ``CnnPolicy`` whose uint8 observations go channels-last and to the trunk's dtype *before* they are scaled.

    SB3's ``preprocess_obs`` makes a float32 NCHW copy and divides it by 255 (two 29 MB passes for a minibatch of 256
    stacks); the trunk then copied it to channels-last and autocast copied it again to bf16. Here the uint8 stack is
    laid out as the first convolution's weights are (channels-last in ``train_ppo``: 7 MB), cast once to float32 or
    bf16 and divided in place: the same values bit for bit (x/255 is computed in fp32 and rounded once either way),
    ~1.1x (fp32) and ~1.5x (bf16) the minibatch update's speed on 2 CPU cores (docs/ppo-profile.md). Parameters and
    state dict are ``CnnPolicy``'s, so every saved agent loads into it.
    """

    def extract_features(  # type: ignore[override]
        self, obs: torch.Tensor, features_extractor: BaseFeaturesExtractor | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if not (self.share_features_extractor and self.normalize_images and obs.dtype == torch.uint8):
            return super().extract_features(obs, features_extractor)
        extractor = self.features_extractor if features_extractor is None else features_extractor
        dtype = torch.bfloat16 if getattr(extractor, "bf16", False) else torch.float32
        conv = next((m for m in extractor.modules() if isinstance(m, torch.nn.Conv2d)), None)
        if conv is not None and conv.weight.is_contiguous(memory_format=torch.channels_last):
            obs = obs.contiguous(memory_format=torch.channels_last)  # the layout of the weights (``train_ppo``)
        return extractor(obs.to(dtype).div_(255.0))


def policy_kwargs(precision: str) -> dict[str, Any] | None:
    """``FastCnnPolicy``'s ``policy_kwargs`` for a resolved mode: fp32 keeps SB3's own NatureCNN (the numerics of every
    earlier row), bf16 the autocast trunk. One recipe for training (``train_ppo``) and loading (``agent_io``)."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return {"features_extractor_class": FastNatureCNN, "features_extractor_kwargs": {"bf16": True}}
    raise DataError(f"unknown precision {precision!r} (expected fp32 or bf16)")


def bf16_supported(device: str | torch.device = "cpu") -> bool:
    """Whether bf16 autocast of a convolution runs on ``device`` at all (speed is the probe's business)."""
    try:
        x = torch.zeros(1, 4, 84, 84, device=device)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
            torch.nn.functional.conv2d(x, torch.zeros(1, 4, 8, 8, device=device), stride=4)
        return True
    except (RuntimeError, TypeError):
        return False


def _cache_path() -> Path:
    root = os.environ.get("TREX_BENCH_CACHE") or Path.home() / ".cache" / "trex_bench"
    return Path(root) / "precision.json"


def _machine_key(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
    return f"{cpu}|{gpu}|torch {torch.__version__}|{torch.get_num_threads()} threads|{device.type}"


# When a cached probe is trusted (see the module docstring): the speeds measured ~1.9x and ~1.6x apart on idle CPUs
# (docs/measurements.md "PPO numerics"); a margin under 1.3x is within what load on 2 shared cores moved them.
CLEAR_MARGIN = 1.3
MAX_AGE_S = 30 * 24 * 3600  # a month: drivers, microcode and the machine's neighbours change


def _load() -> tuple[float | None, int]:
    """The 1-minute load average (None where the OS has none) and the number of cores."""
    try:
        load: float | None = round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        load = None
    return load, os.cpu_count() or 1


def probe_precision(
    device: str | torch.device = "cpu",
    rounds: int = 3,
    steps: int = 2,
    batch: int = 256,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Time PPO-sized update steps (forward, backward, Adam on ``batch`` stacks) of the Nature-CNN in fp32 and in
    bf16 autocast, both channels-last: ``rounds`` alternating rounds of ``steps`` steps each after a warm-up step,
    so that load on a shared machine hits both alike; the median round decides.

    Returns:
        ``{"choice": "fp32" | "bf16", "stacks_per_s": {mode: median}, "margin": faster / slower, "load": the load
        average while probing, "cores": os.cpu_count(), "probed_at": Unix time}``; bf16 must be ≥ 10 % faster to
        be chosen (fp32 is the papers' numerics). ``clock``: the timer (a fake one in tests).
    """
    device = torch.device(device)
    space = gym.spaces.Box(0, 255, (4, 84, 84), dtype="uint8")
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (batch, 4, 84, 84), generator=gen, dtype=torch.uint8).to(device).float() / 255.0
    modes = ["fp32", "bf16"] if bf16_supported(device) else ["fp32"]
    steppers = {m: _update_step(space, x, bf16=m == "bf16") for m in modes}
    for step in steppers.values():
        step()  # warm-up: oneDNN picks its kernels on the first call
    rates: dict[str, list[float]] = {m: [] for m in modes}
    load_before, cores = _load()
    for _ in range(rounds):
        for m in modes:
            t0 = clock()
            for _ in range(steps):
                steppers[m]()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            rates[m].append(batch * steps / max(clock() - t0, 1e-12))
    speed = {m: statistics.median(v) for m, v in rates.items()}
    choice = "bf16" if speed.get("bf16", 0.0) > 1.1 * speed["fp32"] else "fp32"
    loads = [v for v in (load_before, _load()[0]) if v is not None]
    return {
        "choice": choice,
        "stacks_per_s": {k: round(v, 1) for k, v in speed.items()},
        "margin": round(max(speed.values()) / min(speed.values()), 3),
        "load": max(loads) if loads else None,
        "cores": cores,
        "probed_at": int(time.time()),
    }


def _update_step(space: gym.Space, x: torch.Tensor, bf16: bool) -> Callable[[], None]:
    """One forward + backward + Adam step of a fresh ``FastNatureCNN`` and a scalar head on ``x``, as a closure."""
    net = FastNatureCNN(space, bf16=bf16).to(x.device, memory_format=torch.channels_last)
    head = torch.nn.Linear(512, 1).to(x.device)
    opt = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=1e-4)

    def step() -> None:
        loss = head(net(x)).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _why_probe(entry: Any, now: float) -> str:
    """Why a cached probe must not be trusted (``""``: it may): none or corrupt, a small margin, measured under
    load, or old."""
    if not (isinstance(entry, dict) and entry.get("choice") in ("fp32", "bf16")):
        return "no cached probe for this machine"
    speeds = entry.get("stacks_per_s")
    if isinstance(speeds, dict) and "bf16" not in speeds:
        return ""  # bf16 cannot run here: fp32 whatever the load
    margin, load, cores, at = (entry.get(k) for k in ("margin", "load", "cores", "probed_at"))
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (margin, cores, at)):
        return "the cached probe did not record its margin, load and time"
    if margin < CLEAR_MARGIN:
        return f"the cached probe's margin was small ({margin:.2f}x < {CLEAR_MARGIN}x)"
    if isinstance(load, int | float) and load > cores:
        return f"the cached probe ran under load ({load:.1f} on {cores} cores)"
    if not -3600 <= now - at <= MAX_AGE_S:  # (an hour of clock skew between machines sharing a home)
        return f"the cached probe is older than {MAX_AGE_S // 86400} days"
    return ""


def resolve_precision(
    precision: str, device: str | torch.device = "cpu", cache: bool = True
) -> tuple[str, dict[str, Any]]:
    """``fp32``/``bf16`` as asked, or the probe's choice for ``auto``: the cached one while it is robust (module
    docstring), else a new probe, cached; returns (mode, record). The record's ``reason`` says which
    (:func:`precision_line` writes it as one line).

    Raises:
        ValueError: an unknown mode, or ``bf16`` where bf16 autocast cannot run.
    """
    if precision not in PRECISIONS:
        raise DataError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    device = torch.device(device)
    if precision == "bf16" and not bf16_supported(device):
        raise DataError(f"--precision bf16: bf16 autocast does not run on {device} with torch {torch.__version__}")
    if precision != "auto":
        return precision, {"asked": precision}
    key = _machine_key(device)
    path = _cache_path()
    found: dict[str, Any] = {}
    if cache and path.exists():
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError):
            found = {}  # a corrupt cache is re-measured, not trusted
        if not isinstance(found, dict):  # valid JSON of another shape: the same
            found = {}
    why = _why_probe(found.get(key), time.time()) if cache else "no cache"
    if why:
        found[key] = probe_precision(device)
        if cache:
            from trex_bench.core.io import write_json

            try:
                write_json(path, found)
            except (OSError, ValueError):
                pass  # a read-only home: the probe simply runs again next time
    reason = f"probed now ({why})" if why else "the cached probe of this machine"
    return found[key]["choice"], {"asked": "auto", "machine": key, **found[key], "reason": reason}


def precision_line(mode: str, record: dict[str, Any]) -> str:
    """One line: which precision PPO runs in and why (asked for, or ``auto``'s probe with its figures).

    >>> precision_line("fp32", {"asked": "fp32"})
    'precision fp32: asked for (--precision fp32)'
    """
    if record.get("asked") != "auto":
        return f"precision {mode}: asked for (--precision {record.get('asked', mode)})"
    speeds = record.get("stacks_per_s") or {}
    figures = ", ".join(f"{m} {v:,.0f}" for m, v in sorted(speeds.items())) + " stacks/s" if speeds else "no figures"
    load = record.get("load")
    under = f", load {load:.1f} on {record.get('cores')} cores" if isinstance(load, int | float) else ""
    margin = f" ({record['margin']:.2f}x)" if isinstance(record.get("margin"), int | float) else ""
    return f"precision {mode}: --precision auto, {record.get('reason', 'probed')}: {figures}{margin}{under}"
