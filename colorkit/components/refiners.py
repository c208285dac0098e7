"""Refiners: post-process the generator's colour prediction."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from colorkit.components.layers import pad_to
from colorkit.fast import PackedConv, fusable_activation
from colorkit.hookspecs import hookimpl
from colorkit.registry import Component

#: How the Improver's patch grid is placed while training: ``"fixed"`` at the image's
#: top-left corner (the paper), ``"random"`` at a new random offset every forward pass.
GRID_SHIFTS = ("fixed", "random")


def grid_offsets(patch: int, spin: int) -> list[tuple[int, int]]:
    """The patch-grid offsets that cycle spinning averages over.

    Args:
        patch: patch side in pixels.
        spin: offsets per axis, evenly spaced in ``[0, patch)``; 1 is the plain grid.

    Returns:
        ``spin²`` ``(dy, dx)`` offsets, ``(0, 0)`` first.
    """
    steps = [index * patch // spin for index in range(spin)]
    return [(dy, dx) for dy in steps for dx in steps]


def on_shifted_grid(
    patchwise: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    patch: int,
    offset: tuple[int, int],
) -> torch.Tensor:
    """Run a patch-wise function with its patch grid moved by ``offset``.

    ``x`` is padded at the top and left by the offset and at the bottom and right up to
    a multiple of ``patch`` (edge replication), ``patchwise`` maps the padded
    ``B×C×H×W`` tensor to one of the same height and width, and the result is cropped
    back to ``x``'s size.

    Args:
        patchwise: the function that works on non-overlapping, top-left aligned patches.
        x: ``B×C×H×W``.
        patch: patch side in pixels.
        offset: ``(dy, dx)``, each in ``[0, patch)``.

    Returns:
        ``patchwise``'s output over ``x``'s pixels.
    """
    dy, dx = offset
    height, width = x.shape[-2:]
    if dy or dx:
        x = F.pad(x, (dx, 0, dy, 0), mode="replicate")
    padded, _, _ = pad_to(x, patch)
    return patchwise(padded)[..., dy : dy + height, dx : dx + width]


class MLPImprover(nn.Module):
    """The paper's Improver: a patch-wise MLP denoiser with a residual connection.

    The prediction and the gray condition are cut into non-overlapping
    ``patch×patch`` patches (with einops); a fully connected network
    (input → hidden → output) maps each flattened patch to a correction that is
    added to the prediction. The last layer starts at zero, so a new Improver is
    the identity and training starts from the generator's output.

    Trained against a PatchGAN, whose input gradient repeats every 8 pixels (its
    three stride-2 layers), an Improver whose 8×8 patches sit on that same lattice
    learns to stamp one correction on every patch: a grid of colour dots. ``shift``
    and ``spin`` take the patch grid off that lattice (see the "Improver grid" section
    of the benchmarks page for the measurements).

    Args:
        channels: channels of the prediction (2 for ab, 3 for RGB).
        cond_channels: channels of the condition (1 for gray).
        patch: patch side in pixels.
        hidden: width of the hidden layer.
        shift: ``"fixed"`` (the paper) keeps the patch grid at the image's top-left
            corner; ``"random"`` moves it by a random offset at every training forward
            pass, so no correction can stay aligned with the discriminator's lattice.
        spin: patch-grid offsets per axis averaged at inference (cycle spinning):
            1 runs the plain grid (the paper), 2 averages four grids half a patch apart,
            4 (the default) sixteen grids, ``patch`` (or more) all ``patch²``; the cost
            grows with ``spin²``. Training always runs one grid.

    Raises:
        ValueError: if ``patch``, ``hidden`` or ``spin`` is below 1, or ``shift`` is
            unknown.
    """

    def __init__(
        self,
        channels: int = 2,
        cond_channels: int = 1,
        patch: int = 8,
        hidden: int = 256,
        shift: str = "fixed",
        spin: int = 4,
    ) -> None:
        super().__init__()
        if patch < 1 or hidden < 1:
            raise ValueError(f"patch and hidden must be positive, got {patch} and {hidden}")
        if shift not in GRID_SHIFTS:
            raise ValueError(f"shift must be one of {GRID_SHIFTS}, got {shift!r}")
        if spin < 1:
            raise ValueError(f"spin must be at least 1, got {spin}")
        self.patch = patch
        self.channels = channels
        self.shift = shift
        self.spin = min(spin, patch)
        self.mlp = nn.Sequential(
            nn.Linear((channels + cond_channels) * patch * patch, hidden),
            nn.GELU(),
            nn.Linear(hidden, channels * patch * patch),
        )
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def offsets(self) -> list[tuple[int, int]]:
        """The patch-grid offsets of the next forward pass.

        Returns:
            One random ``(dy, dx)`` in training with ``shift="random"``, ``(0, 0)`` in
            training otherwise, and the ``spin²`` offsets of :func:`grid_offsets` in
            evaluation mode.
        """
        if self.training and self.shift == "random":
            dy, dx = torch.randint(0, self.patch, (2,)).tolist()
            return [(dy, dx)]
        return grid_offsets(self.patch, 1 if self.training else self.spin)

    def correction(self, both: torch.Tensor) -> torch.Tensor:
        """The MLP's correction for top-left aligned patches of prediction and condition.

        Args:
            both: prediction and condition concatenated, height and width multiples
                of ``patch``.

        Returns:
            The correction, ``channels`` channels at ``both``'s size.
        """
        p = self.patch
        patches = rearrange(both, "b c (h p1) (w p2) -> b h w (c p1 p2)", p1=p, p2=p)
        return rearrange(self.mlp(patches), "b h w (c p1 p2) -> b c (h p1) (w p2)", p1=p, p2=p)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        both = torch.cat([x, cond], dim=1)
        offsets = self.offsets()
        correction = sum(
            on_shifted_grid(self.correction, both, self.patch, offset) for offset in offsets
        )
        return x + correction / len(offsets)

    def inference_form(self, dtype: torch.dtype) -> nn.Module | None:
        """This Improver as a :class:`FastImprover` (see :func:`colorkit.fast.inference_form`).

        Args:
            dtype: the weights' dtype.

        Returns:
            The fast form, or ``None`` where it does not apply (an MLP of another
            shape, or a ``spin`` that does not divide ``patch``): a plain copy is used then.
        """
        try:
            return FastImprover(self, dtype)
        except ValueError:
            return None

    def export_form(self) -> nn.Module | None:
        """This Improver as a :class:`PortableImprover`, for ONNX export.

        Returns:
            The portable form, or ``None`` where it does not apply (an MLP of another
            shape, or a ``spin`` that does not divide ``patch``): the Improver itself is
            exported then.
        """
        try:
            return PortableImprover(self)
        except ValueError:
            return None


def _conv_mlp(improver: MLPImprover) -> tuple[nn.Conv2d, nn.Module, nn.Conv2d, int]:
    """The Improver's MLP as a ``patch×patch`` conv, its activation and a 1×1 conv.

    A Linear over ``"(c p1 p2)"`` features is a convolution whose weight is
    ``hidden×c×p1×p2``; the spin² patch grids, ``patch/spin`` pixels apart, are that
    convolution at stride ``patch/spin``.
    """
    layers = list(improver.mlp)
    if (
        len(layers) != 3
        or not isinstance(layers[0], nn.Linear)
        or not isinstance(layers[2], nn.Linear)
    ):
        raise ValueError(f"expected an MLP of Linear, activation, Linear; got {improver.mlp}")
    first, activation, last = layers
    patch, spin = improver.patch, improver.spin
    if patch % spin:
        raise ValueError(f"spin {spin} does not divide the patch side {patch}")
    inputs = first.in_features // (patch * patch)
    hidden = first.out_features
    stride = patch // spin
    conv_in = nn.Conv2d(inputs, hidden, patch, stride=stride)
    conv_out = nn.Conv2d(hidden, last.out_features, 1)
    with torch.no_grad():
        conv_in.weight.copy_(first.weight.reshape(hidden, inputs, patch, patch))
        conv_in.bias.copy_(first.bias)
        conv_out.weight.copy_(last.weight.reshape(last.out_features, hidden, 1, 1))
        conv_out.bias.copy_(last.bias)
    return conv_in, activation, conv_out, stride


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
        if not fusable_activation(improver.mlp[1] if len(improver.mlp) == 3 else None):
            raise ValueError(f"expected an MLP of Linear, activation, Linear; got {improver.mlp}")
        conv_in, activation, conv_out, self.stride = _conv_mlp(improver)
        self.patch = improver.patch
        self.channels = improver.channels
        self.spin = improver.spin
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


class PortableImprover(nn.Module):
    """ONNX form of the paper's :class:`~colorkit.components.refiners.MLPImprover`.

    The arithmetic of :class:`FastImprover` in operators every ONNX runtime has:
    replicate padding (``Pad`` in edge mode), the MLP as a strided ``patch×patch``
    convolution and a 1×1 convolution, and a transposed convolution whose one-hot
    weight puts each patch's ``channels·patch²`` outputs back in place, adding up the
    overlapping patches of the spin² grids (what ``F.fold`` does). Padding amounts
    are remainders of non-negative sizes, which exporters translate exactly for any
    input size.

    Args:
        improver: the Improver to copy (not changed); its MLP must be
            ``Linear → activation → Linear``, and ``spin`` must divide ``patch``.

    Raises:
        ValueError: for an MLP of another shape, or a ``spin`` that does not divide
            ``patch``.
    """

    def __init__(self, improver: MLPImprover) -> None:
        super().__init__()
        self.conv_in, self.activation, self.conv_out, self.stride = _conv_mlp(improver)
        self.patch = improver.patch
        self.spin = improver.spin
        channels, patch = improver.channels, improver.patch
        outputs = channels * patch * patch
        self.place = nn.ConvTranspose2d(outputs, channels, patch, stride=self.stride, bias=False)
        with torch.no_grad():
            self.place.weight.copy_(torch.eye(outputs).reshape(outputs, channels, patch, patch))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The refined prediction: ``x`` plus the mean correction of the spin² grids."""
        both = torch.cat([x, cond], dim=1)
        height, width = both.shape[-2:]
        # every grid's patches start at multiples of the stride from -(patch - stride) on
        margin = self.patch - self.stride
        bottom = (-height) % self.stride + margin
        right = (-width) % self.stride + margin
        padded = F.pad(both, (margin, right, margin, bottom), mode="replicate")
        summed = self.place(self.conv_out(self.activation(self.conv_in(padded))))
        correction = summed[..., margin : margin + height, margin : margin + width]
        return x + correction / self.spin**2


class Identity(nn.Module):
    """No refinement: returns the generator's prediction unchanged.

    Args:
        channels: channels of the prediction (accepted for the refiner interface; unused).
        cond_channels: channels of the condition (unused).
    """

    def __init__(self, channels: int = 2, cond_channels: int = 1) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return x


@hookimpl
def colorkit_components() -> list[Component]:
    return [
        Component("refiner", "mlp", MLPImprover),
        Component("refiner", "identity", Identity),
    ]
