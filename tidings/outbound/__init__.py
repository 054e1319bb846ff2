"""The one place that speaks HTTP to the outside: the pooled client for providers, and its guarded form for the URLs
callers give (webhooks, Web Push), which reaches no private address and follows no redirect."""
