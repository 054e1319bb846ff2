"""Newest-first lists in SQL: ordered by ``(created_at, id)`` descending, each page after the last one's position,
which an index on ``(..., created_at, id)`` finds with one seek (a row value compares as the index sorts)."""

from __future__ import annotations

from tidings.ports import Position


def after(position: Position | None, table: str = "") -> tuple[str, list[object]]:
    """The condition that keeps what comes after ``position`` (all, for the first page), with its arguments;
    ``table`` qualifies the columns (``"s."``) in a join."""
    if position is None:
        return "1", []
    return f"({table}created_at, {table}id) < (?, ?)", [position.created_at, position.id]


def newest_first(table: str = "") -> str:
    return f"ORDER BY {table}created_at DESC, {table}id DESC LIMIT ?"
