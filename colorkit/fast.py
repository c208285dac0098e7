"""Inference forms: what a network becomes when it only has to colorize, and fast.

Training keeps the networks as they are. For colorizing, :func:`inference_form` asks a
network for its own inference form (the ``inference_form(dtype)`` method a component may
define next to its definition, as colorkit's U-Net and MLP Improver do) and otherwise
builds the generic one:

* every BatchNorm that follows a convolution in the same ``nn.Sequential`` is folded
  into that convolution (:func:`fold_batchnorm`), so it costs nothing at run time;
* weights are cast once to the chosen dtype, instead of autocast casting them on every
  call;
* activations are channels-last, the layout oneDNN and cuDNN convolve fastest;
* on CPU, each convolution keeps its weights pre-arranged in oneDNN's blocked layout
  for the input shape it last saw (:class:`PackedConv`), rather than re-arranging them
  on every call, and applies the activation after it in the same kernel.

The precision rule lives here too: :func:`resolve_precision` says what ``"auto"`` means
on a device, for training (autocast) and for inference forms (weight dtype) alike.
:meth:`colorkit.engine.Colorizer.inference_copy` assembles a whole model from these forms.
"""

from __future__ import annotations

import copy
import functools
import itertools
from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = [
    "PRECISIONS",
    "PackedConv",
    "bf16_is_fast",
    "fold_batchnorm",
    "fusable_activation",
    "inference_form",
    "pack_convolutions",
    "precision_dtype",
    "resolve_precision",
]

#: Precision settings: bf16 autocast, fp32, or ``"auto"`` (see :func:`resolve_precision`).
PRECISIONS = ("auto", "bf16", "fp32")

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)
_PACKED_SHAPES = 2  # input shapes whose packed weights are kept per convolution


# -- precision ------------------------------------------------------------------------------
@functools.cache
def _bf16_is_fast(device_type: str) -> bool:
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type == "cpu":
        cpu = torch.cpu
        probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
        return any(getattr(cpu, probe, lambda: False)() for probe in probes)
    return False


def bf16_is_fast(device: torch.device | str) -> bool:
    """Whether bf16 autocast speeds up convolutions on this device.

    True for CUDA devices with bf16 support and for CPUs with AMX or AVX-512 BF16
    units; elsewhere bf16 is emulated and slower than fp32.

    Args:
        device: the device to ask about.

    Returns:
        Whether to prefer bf16 autocast there.
    """
    return _bf16_is_fast(torch.device(device).type)


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """What a precision setting means on a device.

    Args:
        precision: ``"bf16"``, ``"fp32"`` or ``"auto"``: bf16 where :func:`bf16_is_fast`
            says the device runs it fast, else fp32.
        device: where the model runs.

    Returns:
        ``"bf16"`` or ``"fp32"``.

    Raises:
        ValueError: for another value.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bf16" if bf16_is_fast(device) else "fp32"
    return precision


def precision_dtype(precision: str) -> torch.dtype:
    """The weight dtype of an inference form for a resolved precision.

    Args:
        precision: ``"bf16"`` or ``"fp32"`` (as :func:`resolve_precision` returns).

    Returns:
        ``torch.bfloat16`` or ``torch.float32``.
    """
    return torch.bfloat16 if precision == "bf16" else torch.float32


# -- BatchNorm folding ---------------------------------------------------------------------
def _fold_into(conv: nn.Conv2d | nn.ConvTranspose2d, norm: _BatchNorm) -> None:
    # y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta, per output channel
    with torch.no_grad():
        dtype = conv.weight.dtype
        var = norm.running_var.double()
        scale = torch.rsqrt(var + norm.eps)
        shift = -norm.running_mean.double() * scale
        if norm.affine:
            scale = scale * norm.weight.double()
            shift = shift * norm.weight.double() + norm.bias.double()
        if conv.bias is not None:
            shift = shift + conv.bias.double() * scale
        weight = conv.weight.double()
        if isinstance(conv, nn.ConvTranspose2d):
            # weight is in × (out / groups) × kh × kw; output channel g·(out/groups) + j
            groups = conv.groups
            shaped = weight.reshape(groups, weight.shape[0] // groups, weight.shape[1], -1)
            shaped = shaped * scale.reshape(groups, 1, -1, 1)
            weight = shaped.reshape(conv.weight.shape)
        else:
            weight = weight * scale.reshape(-1, 1, 1, 1)
        conv.weight = nn.Parameter(weight.to(dtype), requires_grad=False)
        conv.bias = nn.Parameter(shift.to(dtype), requires_grad=False)


def _foldable(conv: nn.Module, norm: nn.Module) -> bool:
    return (
        isinstance(conv, _CONVS)
        and isinstance(norm, _BatchNorm)
        and norm.running_mean is not None
        and norm.running_var is not None
        and norm.num_features == conv.out_channels
    )


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """An inference copy of a network with its BatchNorm layers folded into convolutions.

    A BatchNorm layer (with running statistics) that comes right after a ``Conv2d`` or
    ``ConvTranspose2d`` in the same ``nn.Sequential`` becomes part of that
    convolution's weight and bias and is replaced by ``nn.Identity``. Layers placed
    otherwise stay as they are. In pix2pix's U-Net every block is
    ``[activation, conv, BatchNorm]``, so each BatchNorm folds into the conv of its own
    block.

    The copy is in eval mode: folding uses the running statistics, which is what
    BatchNorm computes in eval mode, so the copy's outputs equal the original's in
    eval mode up to rounding. The original is not changed.

    Args:
        module: the network.

    Returns:
        The folded copy, in eval mode, with gradients off.
    """
    folded = copy.deepcopy(module).eval()
    for sequential in folded.modules():
        if not isinstance(sequential, nn.Sequential):
            continue
        names = list(sequential._modules)
        for before, after in itertools.pairwise(names):
            conv, norm = sequential._modules[before], sequential._modules[after]
            if conv is not None and norm is not None and _foldable(conv, norm):
                _fold_into(conv, norm)  # type: ignore[arg-type]
                sequential._modules[after] = nn.Identity()
    folded.requires_grad_(False)
    return folded


# -- packed convolutions -------------------------------------------------------------------
def _activation_attr(module: nn.Module | None) -> tuple[str, list[Any], str] | None:
    """oneDNN's name, arguments and algorithm for an activation it applies in the kernel."""
    if module is None:
        return "none", [], ""
    if isinstance(module, nn.ReLU):
        return "relu", [], ""
    if isinstance(module, nn.LeakyReLU):
        return "leaky_relu", [module.negative_slope], ""
    if isinstance(module, nn.Tanh):
        return "tanh", [], ""
    if isinstance(module, nn.Sigmoid):
        return "sigmoid", [], ""
    if isinstance(module, nn.GELU):
        return "gelu", [], module.approximate
    return None


def fusable_activation(module: nn.Module | None) -> bool:
    """Whether :class:`PackedConv` can apply this activation inside its kernel.

    Args:
        module: an activation layer, or ``None`` for none.

    Returns:
        True for ``None``, ``nn.ReLU``, ``nn.LeakyReLU``, ``nn.Tanh``, ``nn.Sigmoid``
        and ``nn.GELU``.
    """
    return _activation_attr(module) is not None


def _apply_attr(y: torch.Tensor, attr: str, scalars: list[Any], algorithm: str) -> torch.Tensor:
    if attr == "relu":
        return F.relu(y)
    if attr == "leaky_relu":
        return F.leaky_relu(y, scalars[0])
    if attr == "tanh":
        return torch.tanh(y)
    if attr == "sigmoid":
        return torch.sigmoid(y)
    if attr == "gelu":
        return F.gelu(y, approximate=algorithm)
    return y


@functools.cache
def _onednn_ops() -> bool:
    ops = torch.ops.mkldnn
    names = (
        "_convolution_pointwise",
        "_convolution_transpose_pointwise",
        "_reorder_convolution_weight",
        "_reorder_convolution_transpose_weight",
    )
    try:
        return torch.backends.mkldnn.is_available() and all(hasattr(ops, n) for n in names)
    except (AttributeError, RuntimeError):
        return False


def _packable(conv: nn.Module) -> bool:
    return (
        isinstance(conv, _CONVS)
        and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)
        and len(conv.kernel_size) == 2
    )


class PackedConv(nn.Module):
    """An inference-only 2-D convolution (or transposed convolution) with its activation.

    On CPU with oneDNN, the weight is re-arranged once per input shape into the blocked
    layout oneDNN's kernel reads (kept for the last two shapes) and the activation
    runs inside the convolution kernel. Elsewhere it runs ``F.conv2d`` /
    ``F.conv_transpose2d`` followed by the activation. No gradients flow through it.

    Args:
        conv: the ``nn.Conv2d`` or ``nn.ConvTranspose2d`` to copy (zero padding, numeric
            padding).
        activation: ``nn.ReLU``, ``nn.LeakyReLU``, ``nn.Tanh``, ``nn.Sigmoid``,
            ``nn.GELU`` or ``None``: applied to the convolution's output.
        dtype: the weights' dtype; the input is cast to it.

    Raises:
        ValueError: for another layer or activation, or a padding mode other than zeros.
    """

    def __init__(
        self,
        conv: nn.Conv2d | nn.ConvTranspose2d,
        activation: nn.Module | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if not _packable(conv):
            raise ValueError(
                "PackedConv needs an nn.Conv2d or nn.ConvTranspose2d with zero, numeric "
                f"padding; got {conv!r}"
            )
        attr = _activation_attr(activation)
        if attr is None:
            raise ValueError(
                f"PackedConv cannot fuse activation {activation!r}; expected ReLU, "
                "LeakyReLU, Tanh, Sigmoid, GELU or None"
            )
        self.attr, self.scalars, self.algorithm = attr
        self.transposed = isinstance(conv, nn.ConvTranspose2d)
        dtype = dtype or conv.weight.dtype
        self.weight = nn.Parameter(conv.weight.detach().to(dtype).clone(), requires_grad=False)
        bias = None if conv.bias is None else conv.bias.detach().to(dtype).clone()
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)
        self.stride = list(conv.stride)
        self.padding = list(conv.padding)
        self.dilation = list(conv.dilation)
        self.groups = conv.groups
        self.output_padding = list(conv.output_padding) if self.transposed else [0, 0]
        self._packed: OrderedDict[tuple[Any, ...], torch.Tensor] = OrderedDict()

    def extra_repr(self) -> str:
        kind = "transposed" if self.transposed else "conv"
        return f"{kind}, weight={tuple(self.weight.shape)}, {self.weight.dtype}, act={self.attr}"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_packed"] = OrderedDict()  # oneDNN's layout is rebuilt on first use
        return state

    def _apply(self, fn: Any, recurse: bool = True) -> PackedConv:
        self._packed.clear()  # a move or cast invalidates the packed weights
        return super()._apply(fn, recurse)

    def _use_onednn(self, x: torch.Tensor) -> bool:
        if x.device.type != "cpu" or x.dim() != 4 or not _onednn_ops():
            return False
        if x.dtype == torch.bfloat16:
            return torch.ops.mkldnn._is_mkldnn_bf16_supported()
        return x.dtype == torch.float32

    def _geometry(self) -> list[Any]:
        """The arguments oneDNN's convolution ops take between the weight and the shape."""
        if self.transposed:
            return [self.padding, self.output_padding, self.stride, self.dilation, self.groups]
        return [self.padding, self.stride, self.dilation, self.groups]

    def _packed_weight(self, x: torch.Tensor) -> torch.Tensor:
        key = (tuple(x.shape), x.dtype)
        packed = self._packed.get(key)
        if packed is None:
            ops = torch.ops.mkldnn
            reorder = (
                ops._reorder_convolution_transpose_weight
                if self.transposed
                else ops._reorder_convolution_weight
            )
            packed = reorder(self.weight, *self._geometry(), list(x.shape))
            self._packed[key] = packed
            while len(self._packed) > _PACKED_SHAPES:
                self._packed.popitem(last=False)
        else:
            self._packed.move_to_end(key)
        return packed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution and activation of ``x`` (cast to the weights' dtype)."""
        x = x.to(self.weight.dtype)
        if not (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)):
            x = x.contiguous()
        if self._use_onednn(x):
            ops = torch.ops.mkldnn
            convolve = (
                ops._convolution_transpose_pointwise
                if self.transposed
                else ops._convolution_pointwise
            )
            return convolve(
                x,
                self._packed_weight(x),
                self.bias,
                *self._geometry(),
                self.attr,
                self.scalars,
                self.algorithm,
            )
        if self.transposed:
            y = F.conv_transpose2d(
                x,
                self.weight,
                self.bias,
                self.stride,
                self.padding,
                self.output_padding,
                self.groups,
                self.dilation,
            )
        else:
            y = F.conv2d(
                x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
            )
        return _apply_attr(y, self.attr, self.scalars, self.algorithm)


def pack_convolutions(module: nn.Module, dtype: torch.dtype) -> None:
    """Replace every packable convolution by a :class:`PackedConv`, in place.

    An activation :class:`PackedConv` can fuse that comes right after the convolution in
    the same ``nn.Sequential`` (folded BatchNorms, left as ``nn.Identity``, are passed
    over) moves into it.

    Args:
        module: the network to change.
        dtype: the packed weights' dtype.
    """
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if not _packable(child):
                continue
            activation = None
            if isinstance(parent, nn.Sequential):
                names = list(parent._modules)
                # the next layer that does something (folded BatchNorms left Identity)
                later = [
                    n
                    for n in names[names.index(name) + 1 :]
                    if not isinstance(parent._modules[n], nn.Identity)
                ]
                following = parent._modules[later[0]] if later else None
                if following is not None and _activation_attr(following) is not None:
                    activation = following
                    parent._modules[later[0]] = nn.Identity()
            setattr(parent, name, PackedConv(child, activation, dtype))


class _Cast(nn.Module):
    """Runs a network in a dtype and memory format, returning the input's dtype."""

    def __init__(self, net: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.net = net
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_dtype = x.dtype
        y = self.net(x.to(self.dtype).contiguous(memory_format=torch.channels_last))
        return y.to(out_dtype)


def inference_form(module: nn.Module, dtype: torch.dtype, generic: bool = True) -> nn.Module:
    """A copy of a network for fast inference, computing what it computes in eval mode.

    A network that defines ``inference_form(dtype)`` is asked first (timm's
    ``reparameterize`` in spirit: each network knows its own fused form); a ``None``
    answer means "no special form for this configuration". Otherwise, with ``generic``,
    the copy gets BatchNorm folding, weights cast to ``dtype``, channels-last
    activations and :class:`PackedConv` convolutions, and accepts and returns the
    input's dtype; this generic form suits networks of one input tensor (generators).
    Without ``generic`` it is a plain copy in eval mode.

    The original is not changed; copy again after further training.

    Args:
        module: the network; the copy is made on its device.
        dtype: the weights' dtype (see :func:`precision_dtype`).
        generic: build the generic form when the network has none of its own.

    Returns:
        The inference copy, in eval mode, without gradients.
    """
    own = getattr(module, "inference_form", None)
    form = own(dtype) if callable(own) else None
    if form is None:
        if generic:
            folded = fold_batchnorm(module)
            pack_convolutions(folded, dtype)
            form = _Cast(folded.to(dtype).to(memory_format=torch.channels_last), dtype)
        else:
            form = copy.deepcopy(module)
    return form.eval().requires_grad_(False)
