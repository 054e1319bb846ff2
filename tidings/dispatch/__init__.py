"""The engine that takes jobs from the queue to the providers and records what happened."""
