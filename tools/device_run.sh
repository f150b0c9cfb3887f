#!/usr/bin/env bash
# One `device` lease (one GPU + 16 CPU cores, ≤ 10 minutes of command time), three jobs side by side:
#   1. T-REX on Breakout at the `gpu` budget (reward net ≤ 60 s, fidelity, PPO capped at 300 s of training,
#      30-game evaluation, one leaderboard row);
#   2. the constant-reward control at the same budget (PAPERS.md pitfalls: how much is just staying alive);
#   3. the reward trainer's time to accuracy against the batch-1 T-REX recipe on the GPU.
# SB3's rollout loop is single-threaded Python, so two PPO runs share the GPU and 16 cores with little loss; each
# row records the steps its run reached. Run from the repo root on the device machine, carrying .whl (ale-py,
# gymnasium, stable-baselines3, farama-notifications wheels for its Python 3.12):
#   TREX_BENCH_GIT_COMMIT=$(git rev-parse HEAD) bash tools/device_run.sh
# Dry run elsewhere: PY=.venv/bin/python BUDGET=smoke DEVICE=cpu SKIP_INSTALL=1 OUT=/tmp/o bash tools/device_run.sh
# What comes back under $OUT: log.txt, log_trex.txt, log_constant.txt, log_speed.txt, leaderboard.csv (the new
# rows), results.tar.gz (cards, eval, fidelity, summaries), reward_speed.json.
# JOBS=demos instead trains PPO on the true reward (`gpu` budget, a checkpoint every 60k steps) and records one episode
# from each of the first 12 checkpoints (the papers' demonstrator) into $OUT/ppo-demos.tar.gz, for demos/breakout/.
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
t0=$(date +%s)
PY=${PY:-python3} BUDGET=${BUDGET:-gpu} DEVICE=${DEVICE:-cuda}
if [ -z "${SKIP_INSTALL:-}" ]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$PY -c "import torch, ale_py, stable_baselines3 as sb3; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'ale', ale_py.__version__, 'sb3', sb3.__version__, 'cpus', __import__('os').cpu_count())" || exit 1
echo "commit ${TREX_BENCH_GIT_COMMIT:-unknown}"

pipeline() {  # method
    TREX_BENCH_CACHE=/tmp/trex-cache-$1 timeout 500 $PY -m trex_bench pipeline breakout --method "$1" --budget "$BUDGET" \
        --seed 0 --device "$DEVICE" --no-progress --out "/tmp/runs/breakout-$1-$BUDGET-s0" --leaderboard "$OUT/leaderboard.csv"
    echo "pipeline $1 exit $? at $(( $(date +%s) - t0 )) s"
}
rm -rf /tmp/runs
if [ "${JOBS:-runs}" = demos ]; then
    timeout 540 $PY -m trex_bench demos collect breakout --demonstrator ppo --checkpoints 12 --ppo-budget "$BUDGET" \
        --checkpoint-every "${CHECKPOINT_EVERY:-60000}" --episodes 1 --seed 0 --device "$DEVICE" --envs 12 \
        --out /tmp/runs/ppo-checkpoints --no-progress
    echo "collect exit $? at $(( $(date +%s) - t0 )) s"
    $PY -m trex_bench demos verify /tmp/runs/ppo-checkpoints
    cp /tmp/runs/ppo-checkpoints.ppo/card.json "$OUT/ppo_card.json" 2>/dev/null
    tar -czf "$OUT/ppo-demos.tar.gz" -C /tmp/runs ppo-checkpoints
    echo "total $(( $(date +%s) - t0 )) s"
    exit 0
fi
pipeline trex > "$OUT/log_trex.txt" 2>&1 &
p1=$!
pipeline constant > "$OUT/log_constant.txt" 2>&1 &
p2=$!
timeout 300 $PY benchmarks/reward_train_speed.py --device "$DEVICE" --cap-original "${CAP_ORIGINAL:-120}" \
    --cap-ours "${CAP_OURS:-60}" --json "$OUT/reward_speed.json" > "$OUT/log_speed.txt" 2>&1 &
p3=$!
wait $p1 $p2 $p3  # not a bare `wait`: that also waits for the tee of the log, forever
tail -n 12 "$OUT/log_trex.txt" "$OUT/log_constant.txt" "$OUT/log_speed.txt"
tar -czf "$OUT/results.tar.gz" -C /tmp/runs --exclude='*.zip' --exclude='*.safetensors' --exclude='tb' \
    --exclude='tensorboard' . 2>/dev/null
rm -f "$OUT/leaderboard.csv.lock"
echo "total $(( $(date +%s) - t0 )) s"
