"""Stabilizers: temporally stable chroma for video, one frame batch after another.

A colorization network sees each frame on its own, so where the picture barely changes its
chroma still wanders a little from frame to frame, and the eye sees that as flicker. A
stabilizer (the ``stabilizer`` kind, see :class:`colorkit.contracts.Stabilizer`) receives
the frames' gray and predicted chroma in display order and returns the chroma to show.

* ``none``: the per-frame baseline, the chroma as predicted.
* ``flow``: motion-compensated recursive blending. The motion between consecutive frames
  is estimated on the lightness, which the input gives exactly (:func:`estimate_flow`,
  coarse-to-fine Lucas–Kanade); the previous output chroma is warped along it and blended
  with the new prediction, except where the warped lightness disagrees with the frame
  (occlusions, new content) and across scene cuts, where the new prediction is taken as
  it is.

>>> import colorkit, torch
>>> stabilizer = colorkit.create("stabilizer", "flow", strength=0.8)
>>> gray, ab = torch.rand(4, 1, 24, 32), torch.randn(4, 2, 24, 32)
>>> stabilizer(gray, ab).shape
torch.Size([4, 2, 24, 32])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from colorkit.hookspecs import hookimpl
from colorkit.registry import Component

__all__ = ["FlowStabilizer", "NoStabilizer", "estimate_flow", "warp"]


def _check_frames(gray: torch.Tensor, ab: torch.Tensor) -> None:
    if gray.dim() != 4 or gray.shape[1] != 1 or not gray.is_floating_point():
        raise ValueError(f"gray must be a float tensor shaped B×1×h×w, got {tuple(gray.shape)}")
    if ab.dim() != 4 or ab.shape[1] != 2 or ab.shape[0] != gray.shape[0]:
        raise ValueError(
            f"ab must be shaped B×2×h×w with gray's B, got {tuple(ab.shape)} "
            f"for gray {tuple(gray.shape)}"
        )
    if ab.shape[-2:] != gray.shape[-2:]:
        raise ValueError(
            f"gray and ab must have the same height and width, got {tuple(gray.shape[-2:])} "
            f"and {tuple(ab.shape[-2:])}"
        )


class NoStabilizer:
    """No stabilization: each frame keeps the chroma predicted for it alone."""

    def reset(self) -> None:
        """Nothing to forget."""

    def __call__(self, gray: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """The chroma as predicted.

        Args:
            gray: ``B×1×h×w`` gray of consecutive frames, in ``[0, 1]``.
            ab: ``B×2×h×w`` predicted chroma of the same frames.

        Returns:
            ``ab`` itself.

        Raises:
            ValueError: for shapes other than these.
        """
        _check_frames(gray, ab)
        return ab


# -- optical flow --------------------------------------------------------------------------------
def _base_grid(height: int, width: int, device: torch.device) -> torch.Tensor:
    ys = torch.arange(height, dtype=torch.float32, device=device)
    xs = torch.arange(width, dtype=torch.float32, device=device)
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"))  # 2×h×w: x, then y


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Resample ``image`` along a flow field: ``out(x) = image(x + flow(x))``, bilinearly.

    Positions outside the image take the nearest border value.

    Args:
        image: ``B×C×h×w``.
        flow: ``B×2×h×w`` displacements in pixels, ``x`` then ``y``.

    Returns:
        ``B×C×h×w``, the warped image.

    Raises:
        ValueError: if ``flow`` does not match ``image``'s batch, height and width.
    """
    if flow.dim() != 4 or flow.shape[1] != 2 or flow.shape[0] != image.shape[0]:
        raise ValueError(f"flow must be shaped B×2×h×w, got {tuple(flow.shape)}")
    if flow.shape[-2:] != image.shape[-2:]:
        raise ValueError(
            f"flow's size {tuple(flow.shape[-2:])} differs from the image's "
            f"{tuple(image.shape[-2:])}"
        )
    height, width = image.shape[-2:]
    position = _base_grid(height, width, flow.device) + flow
    # grid_sample's coordinates run from -1 to 1 across the pixels' outer edges
    grid = torch.stack(
        [
            (position[:, 0] + 0.5) * (2.0 / width) - 1.0,
            (position[:, 1] + 0.5) * (2.0 / height) - 1.0,
        ],
        dim=-1,
    )
    return F.grid_sample(
        image, grid.to(image.dtype), mode="bilinear", padding_mode="border", align_corners=False
    )


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    return F.avg_pool2d(x, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences, one-sided at the borders."""
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    gx = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) * 0.5
    gy = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) * 0.5
    return gx, gy


def estimate_flow(
    target: torch.Tensor,
    source: torch.Tensor,
    levels: int = 4,
    iterations: int = 3,
    radius: int = 2,
    regularization: float = 1e-5,
) -> torch.Tensor:
    """Dense optical flow by coarse-to-fine Lucas–Kanade: where each target pixel was in the source.

    At each pyramid level (halving the size from the finest), the source is warped by
    the current flow, and a least-squares update is solved over a ``(2·radius+1)²``
    window from the lightness gradients; the flow is then doubled onto the next finer
    level. ``regularization`` is added to the structure tensor's diagonal, so flat or
    edge-only windows keep the flow they have instead of jumping.

    Args:
        target: ``B×1×h×w`` lightness of the frames the flow is for.
        source: ``B×1×h×w`` lightness of the frames it points into.
        levels: pyramid levels (fewer where the image gets smaller than 8 pixels).
        iterations: updates per level.
        radius: half-size of the least-squares window, in pixels of each level.
        regularization: added to the structure tensor's diagonal, in squared gradient
            units of ``[0, 1]`` images.

    Returns:
        ``B×2×h×w`` flow in pixels, ``x`` then ``y``: ``warp(source, flow) ≈ target``.

    Raises:
        ValueError: if the two batches' shapes differ or are not ``B×1×h×w``.
    """
    if target.shape != source.shape or target.dim() != 4 or target.shape[1] != 1:
        raise ValueError(
            f"target and source must both be B×1×h×w, got {tuple(target.shape)} and "
            f"{tuple(source.shape)}"
        )
    target, source = target.float(), source.float()
    pyramid = [(target, source)]
    while len(pyramid) < levels and min(pyramid[-1][0].shape[-2:]) >= 16:
        pyramid.append(tuple(F.avg_pool2d(x, 2, ceil_mode=True) for x in pyramid[-1]))
    flow = None
    for level_target, level_source in reversed(pyramid):
        if flow is None:
            flow = target.new_zeros(target.shape[0], 2, *level_target.shape[-2:])
        else:
            flow = 2.0 * F.interpolate(
                flow, size=level_target.shape[-2:], mode="bilinear", align_corners=False
            )
        target_gx, target_gy = _gradients(level_target)
        for _ in range(iterations):
            warped = warp(level_source, flow)
            source_gx, source_gy = _gradients(warped)
            # the average of both frames' gradients: a symmetric, better-conditioned step
            gx, gy = (target_gx + source_gx) * 0.5, (target_gy + source_gy) * 0.5
            error = warped - level_target
            xx = _box(gx * gx, radius) + regularization
            xy = _box(gx * gy, radius)
            yy = _box(gy * gy, radius) + regularization
            bx, by = _box(gx * error, radius), _box(gy * error, radius)
            determinant = xx * yy - xy * xy
            step = torch.cat([xy * by - yy * bx, xy * bx - xx * by], dim=1) / determinant
            # a step beyond a pixel at this level is outside the linearisation's reach;
            # smoothing the field stops each pixel's noise from feeding the next update
            flow = _box(flow + step.clamp(-1.0, 1.0), radius)
    assert flow is not None
    return flow


class FlowStabilizer:
    """Motion-compensated blending of each frame's chroma with the previous frames' output.

    For frame ``t``, the flow to frame ``t-1`` is estimated on the gray (at the chroma's
    resolution, reduced to ``flow_size`` on its longer side); the previous output chroma
    is warped along it and blended in with weight ``strength × confidence``, where the
    confidence falls from 1 to 0 as the warped previous gray departs from this frame's
    gray by up to ``occlusion`` (so what was hidden, or changed, takes the new
    prediction). Where more than ``cut_fraction`` of the frame is unmatched, the frame
    starts a new shot and keeps its own prediction. The blend is recursive: each output
    carries an exponentially fading memory of the frames before it along the motion.

    Args:
        strength: the previous output's weight where the motion is certain, in ``[0, 1)``;
            0 is the per-frame baseline.
        occlusion: the gray difference (in ``[0, 1]`` units, after a 3×3 average) at which
            a pixel counts as unmatched.
        cut_fraction: share of unmatched pixels that marks a scene cut.
        flow_size: longer side, in pixels, the flow is estimated at (at most the chroma's).
        levels: pyramid levels of :func:`estimate_flow`.
        iterations: Lucas–Kanade updates per level.

    Raises:
        ValueError: for an option outside the ranges above.
    """

    def __init__(
        self,
        strength: float = 0.95,
        occlusion: float = 0.08,
        cut_fraction: float = 0.5,
        flow_size: int = 160,
        levels: int = 4,
        iterations: int = 3,
    ) -> None:
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"strength must be in [0, 1), got {strength}")
        if occlusion <= 0.0:
            raise ValueError(f"occlusion must be positive, got {occlusion}")
        if not 0.0 < cut_fraction <= 1.0:
            raise ValueError(f"cut_fraction must be in (0, 1], got {cut_fraction}")
        if flow_size < 8:
            raise ValueError(f"flow_size must be at least 8 pixels, got {flow_size}")
        self.strength = strength
        self.occlusion = occlusion
        self.cut_fraction = cut_fraction
        self.flow_size = flow_size
        self.levels = levels
        self.iterations = iterations
        self.cuts = 0
        self.reset()

    def reset(self) -> None:
        """Forget the previous frames: the next frame starts a new video."""
        self._gray: torch.Tensor | None = None
        self._ab: torch.Tensor | None = None

    def _flow(self, target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        height, width = target.shape[-2:]
        scale = min(1.0, self.flow_size / max(height, width))
        if scale < 1.0:
            size = (max(8, round(height * scale)), max(8, round(width * scale)))
            small = F.interpolate(torch.cat([target, source]), size=size, mode="area")
            target, source = small.chunk(2)
        flow = estimate_flow(target, source, self.levels, self.iterations)
        if flow.shape[-2:] != (height, width):
            factor = torch.tensor(
                [width / flow.shape[-1], height / flow.shape[-2]], device=flow.device
            ).view(1, 2, 1, 1)
            flow = F.interpolate(flow, size=(height, width), mode="bilinear") * factor
        return flow

    @torch.no_grad()
    def __call__(self, gray: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """Stabilize the chroma of the next consecutive frames.

        Args:
            gray: ``B×1×h×w`` gray of the next frames in display order, in ``[0, 1]``.
            ab: ``B×2×h×w`` their predicted chroma (CIELAB, unscaled).

        Returns:
            ``B×2×h×w`` stabilized chroma.

        Raises:
            ValueError: for shapes other than these, or a size other than the
                previous frames'.
        """
        _check_frames(gray, ab)
        gray, ab = gray.float(), ab.float()
        if self._gray is not None and self._gray.shape[-2:] != gray.shape[-2:]:
            raise ValueError(
                f"frames of size {tuple(gray.shape[-2:])} follow frames of size "
                f"{tuple(self._gray.shape[-2:])}; call reset() between videos"
            )
        first = gray[:1] if self._gray is None else self._gray
        previous = torch.cat([first, gray[:-1]])
        # all flows of the batch in one call: pairs (t-1, t) are known before any blending
        flow = self._flow(gray, previous)
        warped_gray = warp(previous, flow)
        mismatch = _box((warped_gray - gray).abs(), 1)
        confidence = (1.0 - mismatch / self.occlusion).clamp_(0.0, 1.0)
        unmatched = (mismatch >= self.occlusion).float().mean(dim=(1, 2, 3))
        out = torch.empty_like(ab)
        last = self._ab
        for index in range(ab.shape[0]):
            if last is None or unmatched[index] > self.cut_fraction:
                if last is not None:
                    self.cuts += 1
                out[index] = ab[index]
            else:
                carried = warp(last[None], flow[index : index + 1])[0]
                weight = confidence[index] * self.strength
                out[index] = ab[index] + weight * (carried - ab[index])
            last = out[index]
        self._gray, self._ab = gray[-1:].clone(), out[-1].clone()
        return out


@hookimpl
def colorkit_components() -> list[Component]:
    return [
        Component("stabilizer", "none", NoStabilizer),
        Component("stabilizer", "flow", FlowStabilizer),
    ]
