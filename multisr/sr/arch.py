"""The SRCNN network (Dong, Loy, He, Tang, ECCV 2014 / TPAMI 2015).

Three convolutions on the Y channel of a bicubic-upscaled image: patch extraction
(``f1 x f1``, 64 filters, ReLU), non-linear mapping (``f2 x f2``, 32 filters, ReLU) and
reconstruction (``f3 x f3``, 1 filter). The layers use no padding, as in the paper's training:
an input of side ``L`` gives an output of side ``L - (f1 + f2 + f3 - 3)``. Inference pads the
input by replication first (:func:`multisr.sr.inference.super_resolve_luma`) so output and input match.
"""
import torch
from torch import nn

__all__ = ["SRCNN"]


class SRCNN(nn.Module):
    """SRCNN ``f1-f2-f3`` with ``n1`` and ``n2`` filters; input and output ``(B, 1, H, W)``."""

    def __init__(self, f1: int = 9, f2: int = 5, f3: int = 5, n1: int = 64, n2: int = 32):
        super().__init__()
        self.config = {"f1": f1, "f2": f2, "f3": f3, "n1": n1, "n2": n2}
        self.patch = nn.Conv2d(1, n1, f1)
        self.mapping = nn.Conv2d(n1, n2, f2)
        self.reconstruct = nn.Conv2d(n2, 1, f3)

    @property
    def shrink(self) -> int:
        """Pixels lost on each side by the unpadded convolutions."""
        return sum(k // 2 for k in (self.config["f1"], self.config["f2"], self.config["f3"]))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` -> ``(B, 1, H - 2*shrink, W - 2*shrink)``."""
        y = torch.relu(self.patch(y))
        y = torch.relu(self.mapping(y))
        return self.reconstruct(y)
