"""Reinforcement learning on a learned (or true, or constant) reward: reward wrappers and SB3 PPO."""
