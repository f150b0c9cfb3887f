"""PPO agent steps/s: stock SB3 as a user would run it vs ours, side by side in one run (issue: PPO throughput).

    python benchmarks/ppo_throughput.py [--game breakout] [--steps 8192] [--repeats 3] [--threads N] [--json OUT]
                                        [--arms ours-learned,prefs,gail] [--prefs-pairs-per-step 0.1] [--demos DIR]

Arms, each the rl-zoo3 Atari settings (8 envs, n_steps 128, batch 256, 4 epochs, lr 2.5e-4, clip 0.1, ent 0.01):

* ``stock``: SB3 as its docs run Atari: ``make_atari_env`` (gymnasium ``AtariWrapper``, ``DummyVecEnv``) +
  ``VecFrameStack(4)`` + ``PPO("CnnPolicy")``, NCHW fp32;
* ``ours-fp32``: ``train_ppo`` on the true reward, ``--precision fp32`` (ale-py's C++ vector env, channels-last);
* ``ours``: ``train_ppo`` on the true reward, ``--precision auto`` (the probe's choice on this machine);
* ``ours-learned``: as ``ours`` with a learned reward (a fresh T-REX net, sigmoid transform).
* ``prefs``: as ``ours`` with the online preference loop (``rl.preference_loop``, Christiano et al. 2017) paying
  PPO and learning between rollouts: a synthetic oracle, 3 nets, disagreement queries, ``--prefs-pairs-per-step``
  pairs per agent step per net (A.2's rate 0.1 by default), a first batch of ``--prefs-labels``/2 labels before
  PPO's first update with one pretraining pass over it, the rest on the schedule. Queries, labels and training are
  all inside its time; it also prints its steps/s without the first update (the one-time first batch). Target:
  prefs ≥ 0.7 × ours-learned.
* ``gail``: as ``ours`` with GAIL's online reward (``trex_bench.rl.gail``, default ``GAILConfig``): the discriminator
  pays every step and trains after every rollout on it against ``--demos`` (default: the game's committed
  PPO-checkpoint demos). Target: gail ≥ 0.7 × ours-learned;
* ``gail-1epoch``: as ``gail`` with one discriminator epoch per rollout instead of two (not in the default arms).

The arms alternate ``--repeats`` times (background load hits each alike); each prints the median agent steps/s of
its repeats (learning time: rollouts + updates) and its ratio to ``stock``. Targets (issue 13): ours ≥ 2.0 × stock,
ours-learned ≥ 0.90 × ours. Ratios only: absolute speeds depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from trex_bench.core.envs import make_vec_env
from trex_bench.core.io import read_json
from trex_bench.experiment.budgets import ppo_config
from trex_bench.reward.net import RewardNet, save_model
from trex_bench.reward.prefs_config import PrefsConfig
from trex_bench.rl.config import PPOConfig, PPOJob
from trex_bench.rl.ppo import _make_model, train_ppo
from trex_bench.rl.precision import resolve_precision
from trex_bench.rl.preference_loop import PreferenceReward


def stock_sb3(game_id: str, steps: int, seed: int) -> float:
    """Agent steps/s of stock SB3 PPO on ``game_id``'s NoFrameskip-v4 env, the way rl-zoo3 runs it."""
    import ale_py
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)
    env_id = next(k for k in gym.registry if k.endswith("NoFrameskip-v4") and k[: -len("NoFrameskip-v4")].lower() == game_id)
    env = VecFrameStack(make_atari_env(env_id, n_envs=8, seed=seed), n_stack=4)
    model = PPO("CnnPolicy", env, n_steps=128, batch_size=256, n_epochs=4, learning_rate=2.5e-4, clip_range=0.1,
                ent_coef=0.01, vf_coef=0.5, seed=seed, device="cpu", verbose=0)
    t0 = time.perf_counter()
    model.learn(steps)
    wall = time.perf_counter() - t0
    env.close()
    return model.num_timesteps / wall


def prefs_ppo(game_id: str, cfg: PPOConfig, prefs: PrefsConfig, seed: int, precision: str, out: Path) -> dict:
    """``train_ppo``'s PPO (same env, policy, precision and timing: ``learn`` only) with the preference loop: agent
    steps/s over the whole run and without the first update (the first batch and its pretraining, paid once), and
    the loop's seconds per update."""
    venv = make_vec_env(game_id, cfg.n_envs, "paper", seed=seed, training=True)
    loop = PreferenceReward(game_id, prefs, out / "prefs", None, np.random.default_rng(seed))
    model = _make_model(loop.wrap(venv), PPOJob(game_id, cfg, seed=seed, channels_last=True), out, precision)
    seconds: list[float] = []
    update = loop.update

    def timed(*args, **kwargs):  # the loop's own time at each rollout's end
        t = time.perf_counter()
        out = update(*args, **kwargs)
        seconds.append(time.perf_counter() - t)
        return out

    loop.update = timed  # type: ignore[method-assign]
    t0 = time.perf_counter()
    model.learn(cfg.total_steps, callback=loop.callback())
    wall = time.perf_counter() - t0
    venv.close()
    n = model.num_timesteps
    return {"steps_per_s": n / wall, "steps_per_s_after_first": n / (wall - seconds[0]), "update_s": seconds,
            "labels": loop.n_used, "accuracy": loop.accuracy()}


def gail_arm(game_id: str, cfg: PPOConfig, seed: int, out: Path, precision: str, demos_dir: Path, epochs: int) -> float:
    """Agent steps/s of PPO on GAIL's reward: ``train_ppo``'s env and model, plus ``GAILReward``'s wrapper and
    callback (its ``learn`` timed alone, as ``train_ppo``'s card times it)."""
    from trex_bench.demos.frames import FrameCache
    from trex_bench.demos.store import load_demos
    from trex_bench.rl.gail import GAILReward
    from trex_bench.rl.gail_config import GAILConfig
    from trex_bench.rl.ppo import TRAINING_ENV

    demos = load_demos(demos_dir, game=game_id)
    gail = GAILReward(game_id, demos, FrameCache(demos), GAILConfig(epochs=epochs), np.random.default_rng(seed), "cpu")
    env = gail.wrap(make_vec_env(game_id, cfg.n_envs, "paper", seed=seed, training=TRAINING_ENV))
    model = _make_model(env, PPOJob(game_id, cfg, seed=seed, channels_last=True), out, precision)
    t0 = time.perf_counter()
    model.learn(cfg.total_steps, callback=[gail.callback()], progress_bar=False, tb_log_name="ppo")
    wall = time.perf_counter() - t0
    env.close()
    return model.num_timesteps / wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--game", default="breakout")
    ap.add_argument("--steps", type=int, default=8192, help="agent steps per arm and repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--arms", default="stock,ours-fp32,ours,ours-learned,prefs,gail", help="comma-separated arms")
    ap.add_argument("--demos", type=Path, default=None, help="gail's demo set (default demos/<game>/ppo-checkpoints)")
    ap.add_argument("--prefs-pairs-per-step", type=float, default=0.1, help="prefs: pairs per agent step per net")
    ap.add_argument("--prefs-labels", type=int, default=100, help="prefs: the run's label budget")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from trex_bench.core.games import get_game

    game = get_game(args.game)
    chosen, record = resolve_precision("auto")
    cfg = ppo_config("quick").replace(name="bench", total_steps=args.steps, checkpoint_every=0)
    wanted = args.arms.split(",")
    known = ("stock", "ours-fp32", "ours", "ours-learned", "prefs", "gail", "gail-1epoch")
    speeds: dict[str, list[float]] = {a: [] for a in known if a in wanted}
    demos_dir = args.demos or Path(__file__).resolve().parents[1] / "demos" / game.id / "ppo-checkpoints"
    prefs_runs: list[dict] = []
    prefs_cfg = PrefsConfig(horizon_steps=args.steps, total_labels=args.prefs_labels, initial_share=0.5,
                            pretrain_epochs=1, train_pairs_per_step=args.prefs_pairs_per_step)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "reward"
        torch.manual_seed(0)  # a benchmark script, not library code: a fixed random net
        save_model(RewardNet(game.id), model_dir, {"profile": "paper", "method": "random-init"})
        arms = {"ours-fp32": dict(reward="true", precision="fp32"), "ours": dict(reward="true", precision="auto"),
                "ours-learned": dict(reward=model_dir, precision="auto")}
        for rep in range(args.repeats):
            if "stock" in speeds:
                speeds["stock"].append(stock_sb3(game.ale_id, args.steps, rep))
            for arm, kw in arms.items():
                if arm not in speeds:
                    continue
                out = train_ppo(PPOJob(game.id, cfg, seed=rep, **kw), Path(tmp) / f"{arm}-{rep}", progress=False)
                card = read_json(out / "card.json")
                speeds[arm].append(card["steps"] / card["wall_s"])
            if "prefs" in speeds:
                prefs_runs.append(prefs_ppo(game.id, cfg, prefs_cfg, rep, chosen, Path(tmp) / f"prefs-{rep}"))
                speeds["prefs"].append(prefs_runs[-1]["steps_per_s"])
            for arm, epochs in (("gail", 2), ("gail-1epoch", 1)):
                if arm in speeds:
                    out = Path(tmp) / f"{arm}-{rep}"
                    speeds[arm].append(gail_arm(game.id, cfg, rep, out, chosen, demos_dir, epochs))
            print(f"repeat {rep + 1}/{args.repeats}: " + ", ".join(f"{a} {v[-1]:.0f}" for a, v in speeds.items()),
                  flush=True)
    report(args, game.id, speeds, prefs_runs, prefs_cfg, chosen, record)


def report(args: argparse.Namespace, game: str, speeds: dict, prefs_runs: list, prefs_cfg: PrefsConfig, chosen: str,
           record: dict) -> None:
    """The medians, their ratios against the targets, and the JSON file."""
    med = {a: statistics.median(v) for a, v in speeds.items()}
    print(f"\nPPO agent steps/s on {game}, {args.steps} steps x {args.repeats} interleaved repeats (median), "
          f"{torch.get_num_threads()} torch threads; precision auto -> {chosen} {record.get('stacks_per_s')}")
    base = med.get("stock", float("nan"))
    print(f"  {'arm':14} {'steps/s':>9} {'x stock':>8}")
    for arm, v in med.items():
        print(f"  {arm:14} {v:9.1f} {v / base:8.2f}")
    if "ours" in med:
        print(f"  ours / stock = {med['ours'] / base:.2f} (target >= 2.0)")
    if "ours" in med and "ours-learned" in med:
        print(f"  learned / ours = {med['ours-learned'] / med['ours']:.2f} (target >= 0.90)")
    if prefs_runs and "ours-learned" in med:
        after = statistics.median(r["steps_per_s_after_first"] for r in prefs_runs)
        first = statistics.median(r["update_s"][0] for r in prefs_runs)
        later = statistics.median(statistics.median(r["update_s"][1:]) for r in prefs_runs if len(r["update_s"]) > 1)
        print(f"  prefs / learned = {med['prefs'] / med['ours-learned']:.2f} (target >= 0.70); without the first "
              f"update {after / med['ours-learned']:.2f}; loop s per update: first {first:.1f}, later {later:.2f} "
              f"({args.prefs_pairs_per_step:g} pairs/step/net, {prefs_runs[-1]['labels']} labels, held-out accuracy "
              f"{prefs_runs[-1]['accuracy']:.2f})")
    for arm in ("gail", "gail-1epoch"):
        if arm in med and "ours-learned" in med:
            print(f"  {arm} / learned = {med[arm] / med['ours-learned']:.2f} (target >= 0.70)")
    if args.json:
        args.json.write_text(json.dumps({"median": med, "runs": speeds, "precision": record, "steps": args.steps,
                                         "threads": torch.get_num_threads(), "prefs": prefs_runs,
                                         "prefs_config": dataclasses.asdict(prefs_cfg)}, indent=2))


if __name__ == "__main__":
    main()
