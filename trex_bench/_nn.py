"""Small torch helpers shared by the nets."""

from __future__ import annotations

import math

import torch
from torch import nn


def default_init_(net: nn.Module, generator: torch.Generator) -> nn.Module:
    """Re-initialise every conv/linear layer as PyTorch's default does (Kaiming-uniform, a=√5; bias uniform in
    ±1/√fan_in), but drawing from ``generator`` instead of the global RNG; returns ``net``."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
                bound = 1.0 / math.sqrt(m.weight[0].numel())
                m.bias.uniform_(-bound, bound, generator=generator)
    return net
