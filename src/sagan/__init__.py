"""sagan: Self-Attention GANs (Zhang, Goodfellow, Metaxas and Odena, 2018) in PyTorch.

Every command of the `sagan` CLI is one call here: `resolve_config`, `train` (`check_train` for `--dry-run`),
`generate`, `evaluate`, `visualize`, `report`, `export`, `app`, `bench`, `compare` (`load_comparison` and
`check_compare` for `--dry-run`), `download_data`, `describe_data`, `prepare_data`; `load_generator` gives a
trained EMA generator with `.sample()`.
"""

__version__ = "0.1.0"  # first: checkpoints record it

from .api import (
    TrainResult,
    app,
    bench,
    check_compare,
    check_train,
    compare,
    describe_data,
    download_data,
    evaluate,
    export,
    generate,
    load_comparison,
    prepare_data,
    report,
    resolve_config,
    train,
    visualize,
)
from .checkpoints import load_generator
from .config import Config, preset
from .errors import UserError

__all__ = ["Config", "TrainResult", "UserError", "__version__", "app", "bench", "check_compare", "check_train",
           "compare", "describe_data", "download_data", "evaluate", "export", "generate", "load_comparison",
           "load_generator", "prepare_data", "preset", "report", "resolve_config", "train", "visualize"]
