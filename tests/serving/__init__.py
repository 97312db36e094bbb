"""Tests of `segattn serve`; tools/serve_page.py (imported as `serve_page`) starts the server and
drives its page, as tests/tools puts tools/ on the path."""

from .. import tools  # noqa: F401
