"""tunelab: fine-tune pretrained language models on your own data.

The Python API mirrors the CLI::

    import tunelab
    result = tunelab.train("examples/zh-sentiment.yaml")
    tunelab.predict(result["model_dir"], texts=["质量很好"])

Heavy libraries (torch, transformers) load on first use, so ``import tunelab`` stays fast.
"""

from typing import Any

from tunelab.errors import UserError

__version__ = "0.1.0"
API = ("train", "evaluate", "predict", "doctor", "load_trained", "merge")
__all__ = ["UserError", "__version__", *API]


def __getattr__(name: str) -> Any:
    if name in API:
        from tunelab import api

        return getattr(api, name)
    raise AttributeError(f"module 'tunelab' has no attribute {name!r}")
