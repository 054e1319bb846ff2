"""Local emulators of the SMS services tidings talks to, speaking their wire format, for tests and benchmarks.

In a test: ``app = yunpian.create_app(apikey="k", latency=0.1)``, serve ``app`` on loopback, point the provider's
``base_url`` at it, then read ``app[EMULATOR].received`` (``EMULATOR`` from ``tidings.testing.emulator``).
On its own: ``python -m tidings.testing yunpian --port 9001 --latency 0.5 --failure-rate 0.1 --apikey k``.
"""
