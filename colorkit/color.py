"""Differentiable colour conversions between sRGB, CIELAB (D65) and gray.

All functions take and return ``torch.Tensor`` batches shaped ``B×C×H×W`` and are
differentiable, so they can sit inside a training graph. sRGB values are in
``[0, 1]``; CIELAB has ``L`` in ``[0, 100]`` and ``a``, ``b`` roughly in
``[-110, 110]``.

:class:`ColorSpace` is what a network predicts in: ``lab`` (``ab`` from ``L``) or ``rgb``
(RGB from gray), with the scaling of its inputs and outputs.

"Gray" in colorkit means the sRGB-encoded relative luminance ``Y`` of a colour,
so a gray image is exactly the ``L`` channel of CIELAB rendered as a neutral
colour: :func:`rgb_to_gray` and :func:`gray_to_lightness` agree with
:func:`rgb_to_lab`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "AB_SCALE",
    "COLOR_SPACES",
    "L_SCALE",
    "ColorSpace",
    "color_space",
    "gray_to_lightness",
    "lab_to_rgb",
    "lab_to_rgb_in_gamut",
    "linear_to_srgb",
    "rgb_to_gray",
    "rgb_to_lab",
    "srgb_to_linear",
]

#: Divisors that map ``L`` to ``[-1, 1]`` (``L / 50 - 1``) and ``ab`` to about
#: ``[-1, 1]`` (``ab / 110``), the usual normalisation of pix2pix colorization.
L_SCALE = 50.0
AB_SCALE = 110.0

_RGB_TO_XYZ = torch.tensor(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=torch.float64,
)
_XYZ_TO_RGB = torch.linalg.inv(_RGB_TO_XYZ)
_WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
_EPSILON = 216.0 / 24389.0
_KAPPA = 24389.0 / 27.0


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    """Undo the sRGB transfer curve.

    Args:
        rgb: sRGB-encoded values in ``[0, 1]``.

    Returns:
        Linear-light values of the same shape.
    """
    # clamp inside pow keeps the unused branch of `where` finite, so gradients stay finite
    high = ((rgb.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4
    return torch.where(rgb > 0.04045, high, rgb / 12.92)


def linear_to_srgb(linear: torch.Tensor) -> torch.Tensor:
    """Apply the sRGB transfer curve.

    Args:
        linear: linear-light values, nominally in ``[0, 1]``.

    Returns:
        sRGB-encoded values of the same shape (not clamped).
    """
    high = 1.055 * linear.clamp_min(0.0031308) ** (1.0 / 2.4) - 0.055
    return torch.where(linear > 0.0031308, high, linear * 12.92)


def _channel_mix(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", matrix.to(device=x.device, dtype=x.dtype), x)


def _lab_f(t: torch.Tensor) -> torch.Tensor:
    cube_root = t.clamp_min(_EPSILON) ** (1.0 / 3.0)
    return torch.where(t > _EPSILON, cube_root, (_KAPPA * t + 16.0) / 116.0)


def _lab_f_inverse(f: torch.Tensor) -> torch.Tensor:
    cube = f**3
    return torch.where(cube > _EPSILON, cube, (116.0 * f - 16.0) / _KAPPA)


def _check_channels(x: torch.Tensor, channels: int, name: str) -> None:
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f"{name} must be shaped B×{channels}×H×W, got {tuple(x.shape)}")


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """Convert sRGB to CIELAB under the D65 white point.

    Args:
        rgb: ``B×3×H×W`` sRGB in ``[0, 1]``.

    Returns:
        ``B×3×H×W`` CIELAB: ``L`` in ``[0, 100]``, ``a`` and ``b`` about ``[-110, 110]``.

    Raises:
        ValueError: if ``rgb`` is not shaped ``B×3×H×W``.
    """
    _check_channels(rgb, 3, "rgb")
    xyz = _channel_mix(srgb_to_linear(rgb), _RGB_TO_XYZ)
    xyz = xyz / _WHITE_D65.to(device=rgb.device, dtype=rgb.dtype).view(1, 3, 1, 1)
    fx, fy, fz = _lab_f(xyz).unbind(1)
    lightness = 116.0 * fy - 16.0
    a = 500.0 * (fx - fy)
    b = 200.0 * (fy - fz)
    return torch.stack([lightness, a, b], dim=1)


def _lab_to_linear_rgb(lab: torch.Tensor) -> torch.Tensor:
    _check_channels(lab, 3, "lab")
    lightness, a, b = lab.unbind(1)
    fy = (lightness + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = fy - b / 200.0
    xyz = _lab_f_inverse(torch.stack([fx, fy, fz], dim=1))
    xyz = xyz * _WHITE_D65.to(device=lab.device, dtype=lab.dtype).view(1, 3, 1, 1)
    return _channel_mix(xyz, _XYZ_TO_RGB)


def lab_to_rgb(lab: torch.Tensor, clamp: bool = True) -> torch.Tensor:
    """Convert CIELAB (D65) to sRGB.

    Args:
        lab: ``B×3×H×W`` CIELAB.
        clamp: clip the result to ``[0, 1]`` (colours outside the sRGB gamut are
            otherwise returned as they are).

    Returns:
        ``B×3×H×W`` sRGB.

    Raises:
        ValueError: if ``lab`` is not shaped ``B×3×H×W``.
    """
    rgb = linear_to_srgb(_lab_to_linear_rgb(lab))
    return rgb.clamp(0.0, 1.0) if clamp else rgb


def lab_to_rgb_in_gamut(lab: torch.Tensor) -> torch.Tensor:
    """Convert CIELAB (D65) to sRGB, keeping each colour's lightness exactly.

    A colour outside the sRGB gamut is desaturated towards its own gray, in linear
    light, just enough to fit. Luminance is linear in linear RGB, so the result has
    the lightness ``L`` asked for, where clipping each channel would brighten or
    darken saturated colours.

    Args:
        lab: ``B×3×H×W`` CIELAB with ``L`` in ``[0, 100]``.

    Returns:
        ``B×3×H×W`` sRGB in ``[0, 1]``.

    Raises:
        ValueError: if ``lab`` is not shaped ``B×3×H×W``.
    """
    linear = _lab_to_linear_rgb(lab)
    luminance = _lab_f_inverse((lab[:, :1] + 16.0) / 116.0).clamp(0.0, 1.0)
    top = linear.amax(1, keepdim=True)
    bottom = linear.amin(1, keepdim=True)
    # both ratios are at least 1 for colours inside the gamut, so those stay as they are
    fit_high = (1.0 - luminance) / (top - luminance).clamp_min(1e-12)
    fit_low = luminance / (luminance - bottom).clamp_min(1e-12)
    fit = torch.minimum(fit_high, fit_low).clamp(max=1.0)
    return linear_to_srgb(luminance + (linear - luminance) * fit).clamp(0.0, 1.0)


def rgb_to_gray(rgb: torch.Tensor) -> torch.Tensor:
    """The gray image of an sRGB batch: sRGB-encoded relative luminance.

    Args:
        rgb: ``B×3×H×W`` sRGB in ``[0, 1]``.

    Returns:
        ``B×1×H×W`` gray in ``[0, 1]`` whose CIELAB ``L`` equals that of ``rgb``.
    """
    _check_channels(rgb, 3, "rgb")
    luminance = _channel_mix(srgb_to_linear(rgb), _RGB_TO_XYZ[1:2])
    return linear_to_srgb(luminance).clamp(0.0, 1.0)


def gray_to_lightness(gray: torch.Tensor) -> torch.Tensor:
    """CIELAB ``L`` of a gray image.

    Args:
        gray: ``B×1×H×W`` sRGB-encoded gray in ``[0, 1]``.

    Returns:
        ``B×1×H×W`` lightness in ``[0, 100]``.
    """
    _check_channels(gray, 1, "gray")
    return 116.0 * _lab_f(srgb_to_linear(gray)) - 16.0


# -- the spaces networks predict in ----------------------------------------------------------
@dataclass(frozen=True)
class ColorSpace:
    """The colour space a network predicts in, and the scaling of its input and output.

    The network's condition and prediction are both scaled to about ``[-1, 1]``.

    Args:
        name: ``"lab"`` (predict ``ab`` from ``L``) or ``"rgb"`` (predict RGB from gray).
        channels: channels of the prediction: 2 for ``lab``, 3 for ``rgb``.
    """

    name: str
    channels: int

    def encode(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Split an RGB batch into the network's condition and target.

        Args:
            rgb: ``B×3×H×W`` in ``[0, 1]``.

        Returns:
            ``(condition, target)``: ``L`` and ``ab`` in ``lab`` space, gray and RGB in
            ``rgb`` space.
        """
        if self.name == "lab":
            lab = rgb_to_lab(rgb)
            return lab[:, :1] / L_SCALE - 1.0, lab[:, 1:] / AB_SCALE
        return rgb_to_gray(rgb) * 2.0 - 1.0, rgb * 2.0 - 1.0

    def condition(self, gray: torch.Tensor) -> torch.Tensor:
        """The network's condition for a gray batch.

        Args:
            gray: ``B×1×H×W`` in ``[0, 1]``.

        Returns:
            ``L`` scaled to ``[-1, 1]`` in ``lab`` space, ``gray * 2 - 1`` in ``rgb``.
        """
        if self.name == "lab":
            return gray_to_lightness(gray) / L_SCALE - 1.0
        return gray * 2.0 - 1.0

    def decode(self, condition: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        """RGB from a condition and a prediction.

        Args:
            condition: the condition, as :meth:`condition` makes it.
            prediction: the network's output.

        Returns:
            ``B×3×H×W`` RGB in ``[0, 1]``.
        """
        if self.name == "lab":
            lab = torch.cat([(condition + 1.0) * L_SCALE, prediction * AB_SCALE], dim=1)
            return lab_to_rgb(lab)
        return ((prediction + 1.0) / 2.0).clamp(0.0, 1.0)

    def chroma(self, condition: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        """CIELAB chroma of a prediction.

        Args:
            condition: the condition, as :meth:`condition` makes it.
            prediction: the network's output.

        Returns:
            ``B×2×H×W`` unscaled ``ab``.
        """
        if self.name == "lab":
            return prediction * AB_SCALE
        return rgb_to_lab(self.decode(condition, prediction))[:, 1:]


#: The colour spaces by name.
COLOR_SPACES = {"lab": ColorSpace("lab", 2), "rgb": ColorSpace("rgb", 3)}


def color_space(name: str) -> ColorSpace:
    """A colour space by name.

    Args:
        name: ``"lab"`` or ``"rgb"``.

    Returns:
        The :class:`ColorSpace`.

    Raises:
        ValueError: for another name.
    """
    try:
        return COLOR_SPACES[name]
    except KeyError:
        raise ValueError(
            f"color_space must be one of {tuple(COLOR_SPACES)}, got {name!r}"
        ) from None
