"""colorkit-convrefiner: a residual convolutional refiner for colorkit, as an example plugin."""

from colorkit_convrefiner.plugin import CONV_RECIPE, ConvRefiner

__version__ = "0.1.0"

__all__ = ["CONV_RECIPE", "ConvRefiner", "__version__"]
