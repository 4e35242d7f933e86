"""Label values from page-controlled URLs: normalised, bounded, and capped in number.

Prometheus labels must stay bounded. A page URL becomes scheme, host and path (query and fragment
dropped, since they carry ids and tokens); a module URL becomes its path. At most ``limit``
distinct values are handed out per label name for the daemon's lifetime; later ones fold into
``other``, so a page that navigates through endless URLs cannot grow the series count.
"""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_LABEL_CHARS = 256
OTHER = "other"
UNKNOWN = "unknown"


def page_label(url: str) -> str:
    """``https://host/path?q#f`` -> ``https://host/path``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return UNKNOWN
    if parts.scheme in ("http", "https", "file"):
        value = f"{parts.scheme}://{parts.netloc}{parts.path or '/'}"
    elif parts.scheme in ("data", "blob", "about", "chrome"):
        value = f"{parts.scheme}:" if parts.scheme != "about" else url.split("?", 1)[0].split("#", 1)[0]
    else:
        value = UNKNOWN
    return _clean(value)


def module_label(url: str | None) -> str:
    """The URL path of a wasm module, or ``unknown``."""
    if not url:
        return UNKNOWN
    try:
        parts = urlsplit(url)
    except ValueError:
        return UNKNOWN
    if parts.scheme in ("http", "https", "file"):
        return _clean(parts.path or "/")
    return _clean(f"{parts.scheme}:") if parts.scheme else UNKNOWN


def _clean(value: str) -> str:
    value = "".join(ch if ch.isprintable() else "_" for ch in value)
    return value[:MAX_LABEL_CHARS] or UNKNOWN


class LabelCap:
    """Hands out at most ``limit`` distinct values; the rest become ``other``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self.folded = 0

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) < self.limit:
            self._seen.add(value)
            return value
        self.folded += 1
        return OTHER
