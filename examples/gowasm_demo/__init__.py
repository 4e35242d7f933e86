"""Demo and test harness: Go toolchains from PyPI, js/wasm builds, and a static web server.

Used by the README's demo command (``python -m gowasm_demo``), the test suite and the benchmarks.
It is not part of the exporter: the exporter needs no Go toolchain.
"""
