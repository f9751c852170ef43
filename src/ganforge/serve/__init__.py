"""The HTTP service and web page for a generator: `make_app(G)`, run by `ganforge serve`."""

from ganforge.serve.app import make_app

__all__ = ["make_app"]
