"""`segattn serve`: a trained checkpoint as an HTTP service on LitServe (server.py), its model API
(api.py), the checks of an upload (uploads.py, guard.py) and a page to try it (page.html)."""

from segattn.serving.server import build_server, serve

__all__ = ["build_server", "serve"]
