"""packr-replay: record, replay and diff the host calls of packr WebAssembly guests."""

from ._version import __version__

__all__ = ["__version__"]
