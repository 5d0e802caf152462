"""handcap's inference engine: hand model, networks, detection, tracking, capture files, CLI."""

__version__ = "0.1.0"
