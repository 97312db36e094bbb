"""`segattn serve`: a trained checkpoint as an HTTP service on LitServe (server.py), its model API
(api.py), the checks of an upload (uploads.py, guard.py), its defaults (defaults.py) and a page to
try it (page.html). `build_server` and `serve` import LitServe on first use, so that defaults.py
is readable without the `serve` extra."""

from typing import Any

__all__ = ["build_server", "serve"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from segattn.serving import server

        return getattr(server, name)
    raise AttributeError(f"module 'segattn.serving' has no attribute {name!r}")
