"""FLOP counts and GPU peaks: what turns a measured step time into a share of the peak."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["BF16_PEAK_TFLOPS", "bf16_peak_flops", "count_flops"]

#: Dense (no sparsity) bf16 tensor-core peaks in TFLOPS, from the vendors' data sheets,
#: keyed by words that must all appear in ``torch.cuda.get_device_name()``. The first
#: matching row wins, so the more specific rows come first.
BF16_PEAK_TFLOPS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("H100", "PCIe"), 756.0),
    (("H100", "NVL"), 835.0),
    (("GH200",), 989.0),
    (("H100",), 989.0),  # SXM, reported as "H100 80GB HBM3"
    (("H200",), 989.0),
    (("B200",), 2250.0),
    (("A100",), 312.0),
    (("L40S",), 362.0),
    (("L4",), 121.0),
)


def count_flops(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Floating-point operations of one call, counted by ``torch.utils.flop_counter``.

    Counts matrix multiplications and convolutions (forward and backward), which
    dominate these networks; elementwise work is not counted. The call really runs.

    Args:
        fn: what to count, e.g. ``lambda: model.train_step(batch)``.
        *args: its positional arguments.
        **kwargs: its keyword arguments.

    Returns:
        The number of FLOPs (a multiply-add counts as two).
    """
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn(*args, **kwargs)
    return int(counter.get_total_flops())


def bf16_peak_flops(device: torch.device | str) -> float | None:
    """The dense bf16 peak of a CUDA device in FLOP/s, from :data:`BF16_PEAK_TFLOPS`.

    Args:
        device: a CUDA device.

    Returns:
        FLOP/s, or ``None`` for a CPU or a GPU not in the table.
    """
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(device)
    for words, tflops in BF16_PEAK_TFLOPS:
        if all(word in name for word in words):
            return tflops * 1e12
    return None
