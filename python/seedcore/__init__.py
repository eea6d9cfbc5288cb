"""seedcore: a trained network's weights -> a small ``.seed`` file -> the weights
again, decoded by a fast, dependency-free native core.

    seed = seedcore.extract("model.safetensors", codec="prng", bits=4)
    seed.save("model.seed")
    model = seedcore.assemble("model.seed")
    weights = model.state_dict()
"""

from ._version import __version__
from .anneal import Anneal, Evolve
from .assemble import assemble, cpu_features
from .errors import SeedError
from .extract import extract
from .model import Model
from .seed import Seed, load
from .stream import plan_assembly
from .train import Finetune

__all__ = ["extract", "load", "assemble", "Seed", "Model", "SeedError", "cpu_features", "plan_assembly",
           "Finetune", "Anneal", "Evolve",
           "__version__"]
