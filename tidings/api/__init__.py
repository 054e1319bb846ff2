"""The aiohttp application: routes, middlewares and streams. No business rules live here."""
