"""tidings: verification codes and push messages, self-hosted."""

__version__ = "0.1.0"
