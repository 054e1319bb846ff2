"""Local emulators of the SMS services tidings talks to, speaking their wire format, for tests and benchmarks.

Start one in a test with ``create_app(...)`` from its module and read what it accepted from ``app[EMULATOR]``, or
run one on its own: ``python -m tidings.testing yunpian --port 9001 --latency 0.5``.
"""
