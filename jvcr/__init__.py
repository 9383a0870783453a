__version__ = "0.1.0"

def __getattr__(name):  # `from jvcr import Predictor`, imported on first use (torch stays out of `import jvcr`)
    if name == 'Predictor':
        from .inference import Predictor
        return Predictor
    raise AttributeError(f"module 'jvcr' has no attribute {name!r}")
