"""Pure logic: no asyncio, no I/O. The clock and the random source are passed in."""
