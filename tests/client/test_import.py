"""An app that depends on the client loads the client alone: none of the server, its storage or its providers."""

from __future__ import annotations

import json
import subprocess
import sys

SERVER_PARTS = ("sqlite3", "aiosqlite", "redis", "pydantic", "cryptography", "prometheus_client", "tidings.core",
                "tidings.config", "tidings.server", "tidings.api", "tidings.backends", "tidings.providers",
                "tidings.channels", "tidings.wiring")  # fmt: skip


def test_importing_the_client_loads_nothing_of_the_server():
    code = (
        "import sys, time; began = time.perf_counter(); import tidings.client; "
        "took = time.perf_counter() - began; import json; "
        "print(json.dumps({'seconds': took, 'modules': sorted(sys.modules)}))"
    )
    found = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout)
    loaded = [name for name in found["modules"] if name.split(".")[0] in SERVER_PARTS or name.startswith(SERVER_PARTS)]
    assert loaded == []
    print(f"\nimport tidings.client: {found['seconds'] * 1000:.0f} ms")
    assert found["seconds"] < 2.0
