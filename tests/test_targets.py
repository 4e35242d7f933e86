"""Which pages are reported: the URL filters."""

from __future__ import annotations

import re

from gowasm_exporter.targets import UrlFilter


def test_internal_pages_are_never_reported() -> None:
    accept_all = UrlFilter()
    assert not accept_all("about:blank")
    assert not accept_all("chrome://settings/")
    assert accept_all("http://app.test/")


def test_include_then_exclude() -> None:
    url_filter = UrlFilter(include=(re.compile(r"^https://staging\."),), exclude=(re.compile(r"/admin"),))
    assert url_filter("https://staging.example/app")
    assert not url_filter("https://staging.example/admin/app")
    assert not url_filter("https://prod.example/app")
