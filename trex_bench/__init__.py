"""trex_bench: learn rewards from ranked demonstrations on Atari (T-REX, D-REX), reproducibly."""

__version__ = "0.1.0"
