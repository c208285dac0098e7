"""Fast inference copies of trained networks, and the figures speed is judged by.

Training keeps the networks as they are; for inference, :func:`inference_generator`
returns a copy built for speed:

* every BatchNorm that follows a convolution in the same ``nn.Sequential`` is folded
  into that convolution (:func:`fold_batchnorm`), so it costs nothing at run time;
* weights are cast once to bf16 where the device runs bf16 fast, instead of autocast
  casting them on every call;
* activations are channels-last, the layout oneDNN and cuDNN convolve fastest;
* on CPU, each convolution keeps its weights pre-arranged in oneDNN's blocked layout
  for the input shape it last saw (:class:`PackedConv`), rather than re-arranging them
  on every call, and applies the activation after it in the same kernel;
* colorkit's pix2pix U-Net runs through :class:`FastUNet`, which also moves each
  block's leading activation into the kernel of the convolution before it.

:func:`inference_model` wraps this in a :class:`~colorkit.engine.Colorizer` whose
``colorize`` and ``predict_chroma`` work as usual. :func:`count_flops` and
:func:`bf16_peak_flops` turn measured step times into a fraction of a GPU's peak.
"""

from __future__ import annotations

import copy
import functools
import itertools
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from colorkit.components.generators import UNet
from colorkit.components.layers import pad_to
from colorkit.components.refiners import MLPImprover
from colorkit.engine import PRECISIONS, Colorizer, bf16_is_fast
from colorkit.registry import ColorkitError

__all__ = [
    "BF16_PEAK_TFLOPS",
    "FastImprover",
    "FastUNet",
    "InferenceOnlyError",
    "PackedConv",
    "bf16_peak_flops",
    "count_flops",
    "fold_batchnorm",
    "inference_generator",
    "inference_model",
    "resolve_dtype",
]

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

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)
_PACKED_SHAPES = 2  # input shapes whose packed weights are kept per convolution


class InferenceOnlyError(ColorkitError, RuntimeError):
    """Training was asked of a copy made for inference."""


def resolve_dtype(precision: str, device: torch.device | str) -> torch.dtype:
    """The weight dtype of an inference copy for a precision setting.

    Args:
        precision: ``"bf16"``, ``"fp32"`` or ``"auto"`` (bf16 where
            :func:`colorkit.engine.bf16_is_fast` says the device runs it fast).
        device: where the copy will run.

    Returns:
        ``torch.bfloat16`` or ``torch.float32``.

    Raises:
        ValueError: for another precision.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        precision = "bf16" if bf16_is_fast(device) else "fp32"
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

    def _packed_weight(self, x: torch.Tensor) -> torch.Tensor:
        key = (tuple(x.shape), x.dtype)
        packed = self._packed.get(key)
        if packed is None:
            ops = torch.ops.mkldnn
            if self.transposed:
                packed = ops._reorder_convolution_transpose_weight(
                    self.weight,
                    self.padding,
                    self.output_padding,
                    self.stride,
                    self.dilation,
                    self.groups,
                    list(x.shape),
                )
            else:
                packed = ops._reorder_convolution_weight(
                    self.weight,
                    self.padding,
                    self.stride,
                    self.dilation,
                    self.groups,
                    list(x.shape),
                )
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
            weight = self._packed_weight(x)
            ops = torch.ops.mkldnn
            if self.transposed:
                return ops._convolution_transpose_pointwise(
                    x,
                    weight,
                    self.bias,
                    self.padding,
                    self.output_padding,
                    self.stride,
                    self.dilation,
                    self.groups,
                    self.attr,
                    self.scalars,
                    self.algorithm,
                )
            return ops._convolution_pointwise(
                x,
                weight,
                self.bias,
                self.padding,
                self.stride,
                self.dilation,
                self.groups,
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


def _pack_sequentials(module: nn.Module, dtype: torch.dtype) -> None:
    """Replace every packable conv, with the activation right after it, in place."""
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


# -- the U-Net -----------------------------------------------------------------------------
def _only_conv(block: nn.Sequential, kind: type[nn.Module]) -> nn.Module:
    convs = [m for m in block if isinstance(m, _CONVS)]
    if len(convs) != 1 or not isinstance(convs[0], kind):
        raise ValueError(f"expected one {kind.__name__} in U-Net block {block}")
    return convs[0]


def _check_block(
    block: nn.Sequential, lead: type[nn.Module] | None, tail: tuple[type, ...]
) -> None:
    """A folded U-Net block: [lead activation], conv, then only ``tail`` layers."""
    layers = [m for m in block if not isinstance(m, (nn.Identity, nn.Dropout))]
    if lead is not None:
        if not layers or not isinstance(layers[0], lead):
            raise ValueError(f"expected a {lead.__name__} first in U-Net block {block}")
        layers = layers[1:]
    if not layers or not isinstance(layers[0], _CONVS):
        raise ValueError(f"expected a convolution in U-Net block {block}")
    if not all(isinstance(m, tail) for m in layers[1:]):
        raise ValueError(f"U-Net block {block} has layers that cannot be fused")


class FastUNet(nn.Module):
    """Inference form of colorkit's pix2pix :class:`~colorkit.components.generators.UNet`.

    Same outputs as the U-Net in eval mode (up to the arithmetic of ``dtype``), with
    BatchNorm folded, channels-last activations, and each block's leading
    LeakyReLU/ReLU moved into the kernel of the convolution before it. The U-Net
    applies those activations in place, so its skip connections carry the activated
    features too; the decoder's ReLU over the concatenation is applied to the skip
    half while it is copied into the concatenation buffer, and to the other half in
    the kernel of the transposed convolution that produced it.

    Args:
        unet: the U-Net to copy (not changed).
        dtype: the weights' dtype (``torch.bfloat16`` or ``torch.float32``).

    Raises:
        ValueError: if ``unet`` is not laid out as colorkit's U-Net builds it (e.g.
            instance normalisation, which cannot be folded).
    """

    def __init__(self, unet: UNet, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        folded = fold_batchnorm(unet)
        depth = folded.depth
        down, up = list(folded.down), list(folded.up)
        if len(down) != depth or len(up) != depth:
            raise ValueError("U-Net has an unexpected number of blocks")
        _check_block(down[0], None, ())
        for block in down[1:]:
            _check_block(block, nn.LeakyReLU, ())
        for block in up[:-1]:
            _check_block(block, nn.ReLU, ())
        _check_block(up[-1], nn.ReLU, (nn.Tanh,))
        slopes = {block[0].negative_slope for block in down[1:]}
        if len(slopes) != 1:
            raise ValueError("U-Net encoder blocks use different LeakyReLU slopes")
        leaky = nn.LeakyReLU(slopes.pop())
        self.depth = depth
        self.dtype = dtype
        # each encoder conv applies the activation its successor starts with
        self.down = nn.ModuleList(
            PackedConv(
                _only_conv(block, nn.Conv2d), leaky if level < depth - 1 else nn.ReLU(), dtype
            )
            for level, block in enumerate(down)
        )
        tail = [m for m in up[-1] if isinstance(m, nn.Tanh)]
        self.up = nn.ModuleList(
            PackedConv(
                _only_conv(block, nn.ConvTranspose2d),
                nn.ReLU() if index < depth - 1 else (tail[0] if tail else None),
                dtype,
            )
            for index, block in enumerate(up)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The prediction for a condition batch, in the input's dtype."""
        out_dtype = x.dtype
        x, height, width = pad_to(x, 2**self.depth)
        x = x.to(self.dtype).contiguous(memory_format=torch.channels_last)
        skips = []
        for conv in self.down:
            x = conv(x)
            skips.append(x)
        y = self.up[0](skips.pop())
        for conv in self.up[1:]:
            skip = skips.pop()
            # the concatenation, written once: the decoder's output, then ReLU(skip)
            n, channels = y.shape[:2]
            both = torch.empty(
                (n, channels + skip.shape[1], *y.shape[2:]),
                dtype=y.dtype,
                device=y.device,
                memory_format=torch.channels_last,
            )
            both[:, :channels].copy_(y)
            torch.clamp_min(skip, 0, out=both[:, channels:])
            y = conv(both)
        return y[..., :height, :width].to(out_dtype)


class _Cast(nn.Module):
    """Runs a network in a dtype and memory format, returning the input's dtype."""

    def __init__(self, net: nn.Module, dtype: torch.dtype, channels_last: bool) -> None:
        super().__init__()
        self.net = net
        self.dtype = dtype
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_dtype = x.dtype
        y = self.net(x.to(self.dtype).contiguous(memory_format=self.memory_format))
        return y.to(out_dtype)


def inference_generator(
    generator: nn.Module, precision: str = "auto", channels_last: bool = True
) -> nn.Module:
    """A copy of a generator for fast inference (see the module's description).

    colorkit's U-Net (with batch or no normalisation) becomes a :class:`FastUNet`;
    other generators get BatchNorm folding, weights cast to the chosen precision,
    channels-last activations and :class:`PackedConv` convolutions. The copy computes
    what the generator computes in eval mode (dropout off, running statistics), to
    within the rounding of the chosen precision; it accepts and returns ``float32``.

    Args:
        generator: the network (not changed); the copy is made on its device.
        precision: ``"auto"`` (bf16 where the device runs it fast), ``"bf16"`` or
            ``"fp32"``.
        channels_last: run in the channels-last memory format (always so for the U-Net).

    Returns:
        The inference copy, in eval mode, without gradients.

    Raises:
        ValueError: for an unknown precision.
    """
    device = next(generator.parameters()).device
    dtype = resolve_dtype(precision, device)
    if isinstance(generator, UNet):
        try:
            return FastUNet(generator, dtype).eval()
        except ValueError:
            pass  # a layout FastUNet does not cover (e.g. instance norm): the generic path
    folded = fold_batchnorm(generator)
    _pack_sequentials(folded, dtype)
    folded = folded.to(dtype)
    if channels_last:
        folded = folded.to(memory_format=torch.channels_last)
    return _Cast(folded, dtype, channels_last).eval().requires_grad_(False)


class FastImprover(nn.Module):
    """Inference form of the paper's :class:`~colorkit.components.refiners.MLPImprover`.

    The Improver's MLP runs on every non-overlapping ``patch×patch`` patch, so its
    first layer is a convolution with a ``patch×patch`` kernel and stride ``patch``,
    and its second a 1×1 convolution whose ``channels·patch²`` outputs
    ``pixel_shuffle`` puts back in place: the same arithmetic without cutting the image
    into patch vectors and back, which is most of the Improver's time in eager mode.

    Args:
        improver: the Improver to copy (not changed); its MLP must be
            ``Linear → activation → Linear``.
        dtype: the weights' dtype.

    Raises:
        ValueError: for an MLP of another shape or an activation that cannot be fused.
    """

    def __init__(self, improver: MLPImprover, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        layers = list(improver.mlp)
        if (
            len(layers) != 3
            or not isinstance(layers[0], nn.Linear)
            or not isinstance(layers[2], nn.Linear)
            or _activation_attr(layers[1]) is None
        ):
            raise ValueError(f"expected an MLP of Linear, activation, Linear; got {improver.mlp}")
        first, activation, last = layers
        patch, channels = improver.patch, improver.channels
        inputs = first.in_features // (patch * patch)
        hidden = first.out_features
        spin = improver.spin
        if patch % spin:
            raise ValueError(f"spin {spin} does not divide the patch side {patch}")
        # a Linear over "(c p1 p2)" features is a conv whose weight is hidden×c×p1×p2; the
        # spin² patch grids, patch/spin pixels apart, are that conv at stride patch/spin
        self.stride = patch // spin
        conv_in = nn.Conv2d(inputs, hidden, patch, stride=self.stride)
        conv_out = nn.Conv2d(hidden, last.out_features, 1)
        with torch.no_grad():
            conv_in.weight.copy_(first.weight.reshape(hidden, inputs, patch, patch))
            conv_in.bias.copy_(first.bias)
            conv_out.weight.copy_(last.weight.reshape(last.out_features, hidden, 1, 1))
            conv_out.bias.copy_(last.bias)
        self.patch = patch
        self.channels = channels
        self.spin = spin
        self.dtype = dtype
        self.first = PackedConv(conv_in, activation, dtype)
        self.last = PackedConv(conv_out, None, dtype)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The refined prediction: ``x`` plus the MLP's correction, in ``x``'s dtype."""
        n, channels, height, width = x.shape
        # the network's input, cast and laid out in one pass per part
        both = torch.empty(
            (n, channels + cond.shape[1], height, width),
            dtype=self.dtype,
            device=x.device,
            memory_format=torch.channels_last,
        )
        both[:, :channels].copy_(x)
        both[:, channels:].copy_(cond)
        if self.spin == 1:
            both, _, _ = pad_to(both, self.patch)
            correction = F.pixel_shuffle(self.last(self.first(both)), self.patch)
        else:
            correction = self._spun_correction(both) / self.spin**2
        # the sum is computed in x's (wider) dtype without a separate cast
        return torch.add(x, correction[..., :height, :width]).to(x.dtype)

    def _spun_correction(self, both: torch.Tensor) -> torch.Tensor:
        """The sum of the corrections of all spin² grids, in one strided pass.

        The patches of every grid start at multiples of the stride from
        ``-(patch - stride)`` on: the input is padded by that margin, the MLP runs at
        every such start, and ``F.fold`` adds the overlapping corrections up.
        """
        height, width = both.shape[-2:]
        patch, stride = self.patch, self.stride
        margin = patch - stride
        bottom = -(-height // stride) * stride - height + margin
        right = -(-width // stride) * stride - width + margin
        padded = F.pad(both, (margin, right, margin, bottom), mode="replicate")
        corrections = self.last(self.first(padded))
        summed = F.fold(
            corrections.flatten(2),
            output_size=padded.shape[-2:],
            kernel_size=patch,
            stride=stride,
        )
        return summed[..., margin : margin + height, margin : margin + width]


def _inference_refiner(refiner: nn.Module, dtype: torch.dtype) -> nn.Module:
    if isinstance(refiner, MLPImprover):
        try:
            return FastImprover(refiner, dtype).eval()
        except ValueError:
            pass  # an MLP FastImprover does not cover: a plain copy
    return copy.deepcopy(refiner).eval().requires_grad_(False)


class _InferenceColorizer(Colorizer):
    """A Colorizer whose networks are inference copies; it colorizes but does not train."""

    def train_step(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        raise InferenceOnlyError(
            "this model is an inference copy made by colorkit.speed.inference_model; "
            "train the original model instead"
        )


def inference_model(model: Colorizer, precision: str = "auto") -> Colorizer:
    """A copy of a model for fast colorization: ``colorize`` and ``predict_chroma`` work
    as on the original, the generator is :func:`inference_generator`'s copy and the
    MLP Improver a :class:`FastImprover` (other refiners: a copy in eval mode).

    The copy has no discriminator, no losses' state and no optimisers; ``train_step``
    raises :class:`InferenceOnlyError`. Copy again after further training.

    Args:
        model: the trained model (not changed).
        precision: ``"auto"``, ``"bf16"`` or ``"fp32"``, for both networks.

    Returns:
        The inference copy, in eval mode.

    Raises:
        ValueError: for an unknown precision.
    """
    dtype = resolve_dtype(precision, model.device)
    fast = _InferenceColorizer.__new__(_InferenceColorizer)
    nn.Module.__init__(fast)
    fast.recipe = model.recipe
    fast.recipe_name = model.recipe_name
    fast.overrides = dict(model.overrides)
    fast.generator = inference_generator(model.generator, precision)
    fast.refiner = _inference_refiner(model.refiner, dtype)
    fast.discriminator = None
    fast.losses = nn.ModuleDict()
    fast._adversarial = None
    fast.optimizers = {}
    fast._replicas = {}
    fast.precision = "bf16" if dtype == torch.bfloat16 else "fp32"
    return fast.eval()


# -- FLOPs and peaks -----------------------------------------------------------------------
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
