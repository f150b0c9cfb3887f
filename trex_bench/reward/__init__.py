"""Reward learning: the reward net, snippet pairs, the Bradley-Terry trainer, released weights, fidelity."""
