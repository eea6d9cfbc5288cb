"""seedcore: a trained network's weights -> a small ``.seed`` file -> the weights
again, decoded by a fast, dependency-free native core.

    seed = seedcore.extract("model.safetensors", codec="prng", bits=4)
    seed.save("model.seed")
    model = seedcore.assemble("model.seed")
    weights = model.state_dict()
"""

from ._version import __version__
from .assemble import assemble, cpu_features
from .errors import SeedError
from .extract import extract
from .model import Model
from .seed import Seed, load
from .train import Finetune

__all__ = ["extract", "load", "assemble", "Seed", "Model", "SeedError", "cpu_features", "Finetune",
           "__version__"]
