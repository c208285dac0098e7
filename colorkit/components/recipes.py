"""The built-in recipes: pix2pix, the paper's pix2pix + MLP Improver, and ablations."""

from __future__ import annotations

from colorkit.hookspecs import hookimpl
from colorkit.recipe import Recipe
from colorkit.registry import Component

PIX2PIX = Recipe(description="pix2pix: U-Net + 70×70 PatchGAN, cGAN + 100·L1")
PIX2PIX_MLP = Recipe(
    refiner="mlp",
    description="the paper's method: pix2pix followed by the MLP Improver, both trained with "
    "cGAN + 100·L1; the Improver averages 16 shifted patch grids at inference (no dot grid)",
)
PIX2PIX_MLP_PAPER = Recipe(
    refiner="mlp",
    refiner_options={"shift": "fixed", "spin": 1},
    description="the paper exactly: the Improver's patches on one fixed grid, "
    "at inference too (draws a dot grid, see the benchmarks page)",
)
PIX2PIX_MLP_L1 = Recipe(
    refiner="mlp",
    refiner_losses={"l1": 100.0},
    description="pix2pix + MLP Improver trained with L1 alone (ablation)",
)
PIX2PIX_GLOBAL = Recipe(
    discriminator="global", description="pix2pix with one real/fake score per image"
)
UNET_L1 = Recipe(
    discriminator=None, generator_losses={"l1": 100.0}, description="U-Net trained with L1 alone"
)
UNET_L2 = Recipe(
    discriminator=None, generator_losses={"l2": 100.0}, description="U-Net trained with L2 alone"
)


@hookimpl
def colorkit_components() -> list[Component]:
    return [
        Component("recipe", "pix2pix", PIX2PIX),
        Component("recipe", "pix2pix+mlp", PIX2PIX_MLP),
        Component("recipe", "pix2pix+mlp-paper", PIX2PIX_MLP_PAPER),
        Component("recipe", "pix2pix+mlp-l1", PIX2PIX_MLP_L1),
        Component("recipe", "pix2pix-global", PIX2PIX_GLOBAL),
        Component("recipe", "unet-l1", UNET_L1),
        Component("recipe", "unet-l2", UNET_L2),
    ]
