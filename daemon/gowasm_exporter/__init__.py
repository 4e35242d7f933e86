"""gowasm-exporter: Prometheus metrics for Go WebAssembly programs running in Chromium pages."""

__version__ = "0.1.0"
