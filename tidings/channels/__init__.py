"""Push channels: webhooks, Web Push and live streams, each a sender behind the dispatcher's lanes."""
