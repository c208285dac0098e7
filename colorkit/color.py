"""Differentiable colour conversions between sRGB, CIELAB (D65) and gray.

All functions take and return ``torch.Tensor`` batches shaped ``B×C×H×W`` and are
differentiable, so they can sit inside a training graph. sRGB values are in
``[0, 1]``; CIELAB has ``L`` in ``[0, 100]`` and ``a``, ``b`` roughly in
``[-110, 110]``.

:class:`ColorSpace` is what a network predicts in: ``lab`` (``ab`` from ``L``) or ``rgb``
(RGB from gray), with the scaling of its inputs and outputs.

:func:`srgb8_to_gray` and :func:`recombine` are the same conversions for whole files:
8-bit in or out, in bands, without holding full-size float images.

"Gray" in colorkit means the sRGB-encoded relative luminance ``Y`` of a colour,
so a gray image is exactly the ``L`` channel of CIELAB rendered as a neutral
colour: :func:`rgb_to_gray` and :func:`gray_to_lightness` agree with
:func:`rgb_to_lab`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
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
    "recombine",
    "rgb_to_gray",
    "rgb_to_lab",
    "srgb8_to_gray",
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


# -- 8-bit images, in bands ------------------------------------------------------------------
@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one thread for banded work.

    Each band is only ~2**18 pixels and goes through ~20 small operations: intra-op
    threads gain little there, and when other processes share the cores, threads that
    spin at every join make the same work ten times slower.
    """
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _luminance_tables() -> tuple[np.ndarray, ...]:
    # sRGB decoding of the 256 codes, weighted by each primary's share of Y: three table
    # look-ups and two additions replace three powers per pixel
    codes = srgb_to_linear(torch.arange(256, dtype=torch.float64) / 255.0)
    return tuple((codes * _RGB_TO_XYZ[1, c]).to(torch.float32).numpy() for c in range(3))


_LUMINANCE_TABLES = _luminance_tables()


def srgb8_to_gray(rgb: np.ndarray) -> torch.Tensor:
    """:func:`rgb_to_gray` of an 8-bit image, computed in horizontal bands.

    Args:
        rgb: ``H×W×C`` uint8 array; its first three channels are sRGB.

    Returns:
        ``H×W`` float32 gray in ``[0, 1]``.
    """
    height, width = rgb.shape[:2]
    step = max(1, _BAND_PIXELS // max(width, 1))
    gray = torch.empty(height, width, dtype=torch.float32)
    luminance = np.empty((min(step, height), width), dtype=np.float32)
    scratch = np.empty_like(luminance)
    red, green, blue = _LUMINANCE_TABLES
    with _one_thread():
        for top in range(0, height, step):
            band = rgb[top : top + step]
            lum, tmp = luminance[: len(band)], scratch[: len(band)]
            np.take(red, band[..., 0], out=lum)
            np.take(green, band[..., 1], out=tmp)
            lum += tmp
            np.take(blue, band[..., 2], out=tmp)
            lum += tmp
            gray[top : top + len(band)] = linear_to_srgb(torch.from_numpy(lum)).clamp_(0.0, 1.0)
    return gray


def _linear_taps(source: int, target: int) -> tuple[torch.Tensor, ...]:
    """Indices and weights of 1-D linear resampling, as ``F.interpolate`` (align_corners=False).

    PyTorch computes the source position ``scale * (i + 0.5) - 0.5`` in float32 with
    one rounding (a fused multiply-add); positions are rounded the same way here, since
    an error of one float32 step in a position of a few hundred is visible in ``ab``.
    """
    scale = torch.tensor(float(source), dtype=torch.float32) / target
    position = (scale.double() * (torch.arange(target, dtype=torch.float64) + 0.5) - 0.5).float()
    position.clamp_(min=0.0)
    first = position.long().clamp_(max=source - 1)
    second = (first + 1).clamp_(max=source - 1)
    weight = (position - first).clamp_(0.0, 1.0)
    return first, second, 1.0 - weight, weight


def _lab_f_inverse_(f: torch.Tensor) -> torch.Tensor:
    """The inverse of CIELAB's ``f``; overwrites ``f``."""
    linear = (f * (116.0 / _KAPPA)).sub_(16.0 / _KAPPA)
    cube = f.mul(f).mul_(f)
    return torch.where(f > _F_KNEE, cube, linear, out=f)


def _srgb8_table(size: int = 65536) -> np.ndarray:
    levels = linear_to_srgb(torch.arange(size, dtype=torch.float64) / (size - 1))
    return levels.clamp(0.0, 1.0).mul(255.0).add(0.5).to(torch.uint8).numpy()


_F_KNEE = 6.0 / 29.0  # f(t) at t = epsilon, where CIELAB's f turns from linear to cube root
_XYZ_TO_RGB_32 = _XYZ_TO_RGB.to(torch.float32)
_WHITE_32 = _WHITE_D65.to(torch.float32)
# linear light quantised to 16 bits -> 8-bit sRGB: within 0.03 of a level of the exact curve,
# for a fraction of the cost of evaluating it per channel and pixel
_SRGB8_TABLE = _srgb8_table()
_SRGB8_STEPS = float(len(_SRGB8_TABLE) - 1)
_BAND_PIXELS = 2**18  # bands this small stay in cache between the ~20 passes over them


def _band_to_rgb8(gray: torch.Tensor, ab: torch.Tensor, out: np.ndarray) -> None:
    """Write uint8 sRGB of CIELAB (L of ``gray`` (H×W), ``ab`` (2×H×W)) into ``out`` (H×W×3)."""
    luminance = srgb_to_linear(gray)
    fy = _lab_f(luminance)
    xyz = torch.empty((3, *gray.shape), dtype=torch.float32)
    torch.mul(_lab_f_inverse_(ab[0].mul(1.0 / 500.0).add_(fy)), _WHITE_32[0], out=xyz[0])
    # Y is the gray's luminance itself (Yn = 1): the same as decoding L, without the round trip
    xyz[1] = luminance
    torch.mul(_lab_f_inverse_(ab[1].mul(-1.0 / 200.0).add_(fy)), _WHITE_32[2], out=xyz[2])
    del fy
    rgb = torch.mm(_XYZ_TO_RGB_32, xyz.view(3, -1)).view_as(xyz)
    del xyz
    # Colours outside sRGB are desaturated towards their gray in linear light, just enough
    # to fit: luminance is linear in linear RGB, so it stays exactly the gray's, where
    # clipping each channel would brighten or darken them. The largest channel is never
    # below Y nor the smallest above it, so both ratios are at least 1 for colours inside.
    top, bottom = rgb.amax(0), rgb.amin(0)
    fit = (1.0 - luminance).div_(top.sub_(luminance).clamp_min_(1e-12))
    bottom.neg_().add_(luminance).clamp_min_(1e-12)
    fit = torch.minimum(fit, luminance.div(bottom)).clamp_max_(1.0)
    del top, bottom
    rgb.sub_(luminance).mul_(fit).add_(luminance)
    del fit
    levels = rgb.clamp_(0.0, 1.0).mul_(_SRGB8_STEPS).add_(0.5).to(torch.int32)
    np.take(_SRGB8_TABLE, levels.permute(1, 2, 0).numpy(), out=out)


def recombine(gray: torch.Tensor, ab: torch.Tensor, rows_per_chunk: int = 512) -> np.ndarray:
    """Full-resolution 8-bit sRGB from a gray image and low-resolution chroma.

    The result is CIELAB with ``L`` from ``gray`` (:func:`colorkit.color.gray_to_lightness`)
    and ``a``, ``b`` upsampled bilinearly from ``ab`` exactly as
    ``F.interpolate(ab, size=(H, W), mode="bilinear", align_corners=False)``. Colours
    outside the sRGB gamut are desaturated towards their own gray (in linear light)
    until they fit, so the output keeps the gray's luminance everywhere. Linear light is
    encoded to 8-bit sRGB through a 16-bit table (within 0.03 of a level of the exact
    curve). The work is done in horizontal bands: memory beyond the output is a few bands
    of float32.

    Args:
        gray: ``1×1×H×W`` gray in ``[0, 1]``.
        ab: ``1×2×h×w`` CIELAB chroma (unscaled, as :meth:`Colorizer.predict_chroma`
            returns it), on any device.
        rows_per_chunk: the most output rows per band (bands are also kept to about
            2**18 pixels, which keeps them in cache).

    Returns:
        ``H×W×3`` uint8 sRGB array.

    Raises:
        ValueError: if the shapes are not as above or ``rows_per_chunk`` is below 1.
    """
    if gray.dim() != 4 or gray.shape[:2] != (1, 1) or not gray.is_floating_point():
        raise ValueError(f"gray must be a float tensor shaped 1×1×H×W, got {tuple(gray.shape)}")
    if ab.dim() != 4 or ab.shape[:2] != (1, 2) or not ab.is_floating_point():
        raise ValueError(f"ab must be a float tensor shaped 1×2×h×w, got {tuple(ab.shape)}")
    if rows_per_chunk < 1:
        raise ValueError(f"rows_per_chunk must be at least 1, got {rows_per_chunk}")
    with torch.no_grad(), _one_thread():
        gray = gray.detach()[0, 0].to("cpu", torch.float32)
        chroma = ab.detach()[0].to("cpu", torch.float32)
        height, width = gray.shape
        # horizontal pass once at the low resolution (2×h×W, small); the vertical pass per
        # band then gives F.interpolate's separable bilinear result row for row
        left, right, left_weight, right_weight = _linear_taps(chroma.shape[2], width)
        chroma = chroma.index_select(2, left).mul_(left_weight) + chroma.index_select(
            2, right
        ).mul_(right_weight)
        upper, lower, upper_weight, lower_weight = _linear_taps(chroma.shape[1], height)
        out = np.empty((height, width, 3), dtype=np.uint8)
        step = min(rows_per_chunk, max(1, _BAND_PIXELS // width))
        for top in range(0, height, step):
            rows = slice(top, min(height, top + step))
            band = chroma.index_select(1, upper[rows]).mul_(upper_weight[rows, None])
            band += chroma.index_select(1, lower[rows]).mul_(lower_weight[rows, None])
            _band_to_rgb8(gray[rows], band, out[rows])
    return out
