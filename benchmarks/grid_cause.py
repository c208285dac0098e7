"""Why a cGAN-trained MLP Improver stamps a grid: measurements on one trained checkpoint.

    python benchmarks/grid_cause.py CHECKPOINT --data TRAIN_DIR --eval-data TEST_DIR [--size 128]

Prints, on the test photos (centre crops at ``--size``):

* the periodic chroma pattern (:func:`colorkit.metrics.periodic_pattern`, RMS ``ab``) of the
  truth, the generator's output, the refined output and the refiner's correction, at the
  Improver's patch side and at neighbouring periods;
* how much of the correction is the same on every patch, and how closely that matches the
  last layer's bias (a correction that ignores the image);
* the discriminator's mean logit on the truth, the generator's and the refined output;
* the share of the discriminator's input gradient (the adversarial signal the refiner
  follows) that repeats with each period.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

import colorkit
from colorkit.color import AB_SCALE
from colorkit.data import load_photos
from colorkit.metrics import periodic_pattern

PERIODS = (6, 7, 8, 9, 16)


def _rms(pattern: torch.Tensor) -> float:
    """Mean over images of the RMS ``ab`` amplitude of ``B×2×p×p`` patterns."""
    return pattern.square().sum(1).mean((-2, -1)).sqrt().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--data", required=True)
    parser.add_argument("--eval-data", required=True)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()

    model = colorkit.load(args.checkpoint).float().eval()
    model.refiner.spin = 1  # the grid as trained, without cycle spinning
    _, test, _ = load_photos(args.data, size=args.size, eval_data=args.eval_data)
    rgb = torch.stack([test[index] for index in range(len(test))])
    with torch.no_grad():
        condition, target = model.encode(rgb)
        generated = model.generator(condition)
        refined = model.refiner(generated, condition)
    outputs = {
        "truth": target * AB_SCALE,
        "generator": generated * AB_SCALE,
        "refined": refined * AB_SCALE,
        "correction": (refined - generated) * AB_SCALE,
    }
    print(f"{len(rgb)} test images, {args.size} px; RMS ab of the pattern repeating every p px")
    print("p   " + "".join(f"{name:>12}" for name in outputs))
    for period in PERIODS:
        cells = "".join(f"{_rms(periodic_pattern(v, period)):12.3f}" for v in outputs.values())
        print(f"{period:<4}{cells}")

    patch = model.refiner.patch
    side = args.size // patch * patch
    tiles = outputs["correction"][..., :side, :side].unflatten(-1, (-1, patch))
    stamp = tiles.unflatten(-3, (-1, patch)).mean(dim=(0, -4, -2))
    stamp = stamp - stamp.mean((1, 2), keepdim=True)
    bias = model.refiner.mlp[-1].bias.detach().reshape(-1, patch, patch) * AB_SCALE
    bias = bias - bias.mean((1, 2), keepdim=True)
    correlation = torch.corrcoef(torch.stack([bias.flatten(), stamp.flatten()]))[0, 1]
    per_pixel = outputs["correction"].square().sum(1).mean().sqrt()
    print(
        f"correction: RMS {per_pixel:.2f} ab per pixel; the part shared by every patch of "
        f"every image: RMS {stamp.square().sum(0).mean().sqrt():.2f}; last-layer bias "
        f"pattern: RMS {bias.square().sum(0).mean().sqrt():.2f}; correlation {correlation:.2f}"
    )
    with torch.no_grad():
        for name, ab in (("truth", target), ("generator", generated), ("refined", refined)):
            logits = model.discriminator(torch.cat([condition, ab], 1))
            print(f"discriminator on {name:9}: mean logit {logits.mean():+.3f}")
    ab = generated.detach().clone().requires_grad_(True)
    logits = model.discriminator(torch.cat([condition, ab], 1))
    loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    (gradient,) = torch.autograd.grad(loss, ab)
    total = gradient.square().sum(1).mean((-2, -1)).sqrt().mean().item()
    shares = ", ".join(f"p={p}: {_rms(periodic_pattern(gradient, p)) / total:.2f}" for p in PERIODS)
    print(f"share of the discriminator's input gradient repeating every p px: {shares}")


if __name__ == "__main__":
    main()
