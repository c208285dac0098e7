"""Generators: networks from the gray condition to the colour prediction."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from colorkit.components.layers import norm_layer, pad_to, pix2pix_init
from colorkit.fast import PackedConv, fold_batchnorm
from colorkit.hookspecs import hookimpl
from colorkit.registry import Component, UnknownComponentError, suggest


class UNet(nn.Module):
    """The pix2pix U-Net: 4×4 stride-2 convolutions with skip concatenations.

    Encoder C64-C128-C256-C512-C512… (LeakyReLU 0.2), decoder mirrored with
    transposed convolutions (ReLU) and dropout in the innermost decoder blocks,
    tanh output. Inputs of any height and width are padded to a multiple of
    ``2**depth`` and the output is cropped back.

    Args:
        in_channels: channels of the condition (1 for gray).
        out_channels: channels predicted (2 for ab, 3 for RGB).
        depth: number of stride-2 levels; 8 is pix2pix's ``unet_256``.
        base_channels: channels of the first level, doubled per level.
        max_channels: cap on the channel count.
        norm: ``"batch"`` (pix2pix), ``"instance"`` or ``"none"``.
        dropout: dropout probability in the innermost decoder blocks.
        dropout_blocks: how many innermost decoder blocks get dropout (pix2pix's paper
            puts it in the first three decoder layers, the innermost included).

    Raises:
        ValueError: for ``depth`` below 2 or an unknown ``norm``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        depth: int = 8,
        base_channels: int = 64,
        max_channels: int = 512,
        norm: str = "batch",
        dropout: float = 0.5,
        dropout_blocks: int = 3,
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be at least 2, got {depth}")
        norm_layer(norm, 1)  # validates the name before any layer is built
        bias = norm == "none"  # a normalisation right after a conv cancels its bias
        channels = [min(base_channels * 2**i, max_channels) for i in range(depth)]
        self.depth = depth

        self.down = nn.ModuleList()
        for level in range(depth):
            inner = level == depth - 1
            if level == 0:
                block = [nn.Conv2d(in_channels, channels[0], 4, 2, 1, bias=bias)]
            else:
                block = [
                    nn.LeakyReLU(0.2, inplace=True),
                    nn.Conv2d(channels[level - 1], channels[level], 4, 2, 1, bias=bias or inner),
                ]
                if not inner:  # the 1×1 bottleneck has no statistics to normalise
                    block.append(norm_layer(norm, channels[level]))
            self.down.append(nn.Sequential(*block))

        self.up = nn.ModuleList()
        for level in reversed(range(depth)):
            inner = level == depth - 1
            in_ch = channels[level] if inner else 2 * channels[level]
            if level == 0:
                block = [
                    nn.ReLU(inplace=True),
                    nn.ConvTranspose2d(in_ch, out_channels, 4, 2, 1),
                    nn.Tanh(),
                ]
            else:
                block = [
                    nn.ReLU(inplace=True),
                    nn.ConvTranspose2d(in_ch, channels[level - 1], 4, 2, 1, bias=bias),
                    norm_layer(norm, channels[level - 1]),
                ]
                if dropout > 0 and level >= depth - dropout_blocks:
                    block.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*block))
        pix2pix_init(self)

    @property
    def multiple(self) -> int:
        """What the input's height and width are padded to a multiple of: ``2**depth``."""
        return 2**self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, height, width = pad_to(x, self.multiple)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = skips.pop()
        for i, block in enumerate(self.up):
            if i > 0:
                x = torch.cat([x, skips.pop()], dim=1)
            x = block(x)
        return x[..., :height, :width]

    @staticmethod
    def fitting_depth(size: int) -> int:
        """The depth whose bottleneck is 1×1 on ``size``-pixel crops.

        The default depth 8 fits 256-pixel crops (pix2pix's ``unet_256``; 7 is its
        ``unet_128``). A deeper U-Net pads every smaller image to ``2**depth`` and spends
        most of its work on the padding.

        Args:
            size: the crop side in pixels.

        Returns:
            The depth, at least 2.
        """
        return max(2, size.bit_length() - 1)

    def inference_form(self, dtype: torch.dtype) -> nn.Module | None:
        """This U-Net as a :class:`FastUNet` (see :func:`colorkit.fast.inference_form`).

        Args:
            dtype: the weights' dtype.

        Returns:
            The fast form, or ``None`` for a layout it does not cover (instance
            normalisation, which cannot be folded): the generic form is used then.
        """
        try:
            return FastUNet(self, dtype)
        except ValueError:
            return None


def _only_conv(block: nn.Sequential, kind: type[nn.Module]) -> nn.Module:
    convs = [m for m in block if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
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
    if not layers or not isinstance(layers[0], (nn.Conv2d, nn.ConvTranspose2d)):
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


def _conv_block(in_ch: int, out_ch: int, norm: str) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=norm == "none"),
        norm_layer(norm, out_ch),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=norm == "none"),
        norm_layer(norm, out_ch),
        nn.ReLU(inplace=True),
    )


class TimmUNet(nn.Module):
    """A U-Net decoder over any timm encoder, in the manner of segmentation_models_pytorch.

    The encoder is ``timm.create_model(encoder, features_only=True)``; each decoder
    stage upsamples, concatenates the encoder feature of that scale and applies two
    3×3 conv-norm-ReLU layers, ending in a 1×1 convolution and tanh at full resolution.

    Args:
        in_channels: channels of the condition (1 for gray).
        out_channels: channels predicted.
        encoder: any timm model name that supports ``features_only``, e.g. ``"resnet18"``.
        pretrained: load the encoder's pretrained weights (needs them in the local
            timm/Hugging Face cache; off by default).
        norm: normalisation of the decoder: ``"batch"``, ``"instance"`` or ``"none"``.
        min_decoder_channels: the narrowest decoder stage.

    Raises:
        UnknownComponentError: for an encoder name timm does not know, with the nearest names.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        encoder: str = "resnet18",
        pretrained: bool = False,
        norm: str = "batch",
        min_decoder_channels: int = 16,
    ) -> None:
        super().__init__()
        # timm (with torchvision) takes seconds to import: only this generator pays for it,
        # not every command that lists or loads components
        import timm

        try:
            self.encoder = timm.create_model(
                encoder, features_only=True, pretrained=pretrained, in_chans=in_channels
            )
        except RuntimeError as exc:
            if encoder not in timm.list_models():
                raise UnknownComponentError(
                    f"unknown timm encoder {encoder!r}; {suggest(encoder, timm.list_models())}"
                ) from exc
            raise
        skip_channels = self.encoder.feature_info.channels()
        reductions = self.encoder.feature_info.reduction()
        self.multiple = max(reductions)
        self.stages = nn.ModuleList()
        in_ch = skip_channels[-1]
        for skip_ch in reversed(skip_channels[:-1]):
            out_ch = max(skip_ch, min_decoder_channels)
            self.stages.append(_conv_block(in_ch + skip_ch, out_ch, norm))
            in_ch = out_ch
        if reductions[0] > 1:  # a last stage at full resolution, with no skip
            self.stages.append(_conv_block(in_ch, min_decoder_channels, norm))
            in_ch = min_decoder_channels
        self.head = nn.Sequential(nn.Conv2d(in_ch, out_channels, 1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # at least 2×2 at the deepest level, so its BatchNorm has statistics for one image
        x, height, width = pad_to(x, self.multiple, 2 * self.multiple)
        *skips, y = self.encoder(x)
        for stage in self.stages:
            if skips:
                skip = skips.pop()
                y = torch.cat([F.interpolate(y, size=skip.shape[-2:]), skip], dim=1)
            else:
                y = F.interpolate(y, size=x.shape[-2:])
            y = stage(y)
        return self.head(y)[..., :height, :width]


@hookimpl
def colorkit_components() -> list[Component]:
    return [
        Component("generator", "unet", UNet),
        Component("generator", "timm-unet", TimmUNet),
    ]
