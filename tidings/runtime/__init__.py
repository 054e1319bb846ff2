"""What a running process needs, whatever its role: logging, metrics, its heartbeat as a node, its open-file limit,
stopping background tasks, and calls of one loop turn handed on together."""
