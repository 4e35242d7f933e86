"""The status page at ``/``: browsers, Go instances with small plots, recent ends, leak sites.

``status.html`` is served as it is: no page-controlled byte is ever written into it on the server.
The page fetches the JSON API every two seconds and builds its DOM with ``textContent`` and
attribute setters only, so a panic message like ``<img onerror=...>`` stays text. Plots are SVG
polylines of the per-instance history the state keeps (about the last five minutes).
"""

from __future__ import annotations

from importlib import resources

STATUS_PAGE = resources.files(__package__).joinpath("status.html").read_text(encoding="utf-8")
