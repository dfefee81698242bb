"""Experiments over many runs: `compare` trains the variants x seeds of a spec under one protocol and writes the
table and the page (`sagan compare`). Specs are YAML (see `spec`); the packaged ones are in `specs/`."""

from .runner import check, compare
from .spec import Spec, load, packaged

__all__ = ["Spec", "check", "compare", "load", "packaged"]
