"""Checksum-valid ID numbers for tests, computed here independently of kameng.accounts.identity."""

from __future__ import annotations

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)  # GB 11643-1999, table 1
CHECK = "10X98765432"


def with_check(first_17: str) -> str:
    return first_17 + CHECK[sum(int(d) * w for d, w in zip(first_17, WEIGHTS, strict=True)) % 11]


def id_number(*, region: str = "110105", born: str = "19900307", sequence: str = "123") -> str:
    """An 18-character number; the local provider answers by `sequence` (999 mismatch, 998 no record, 997 down)."""
    return with_check(region + born + sequence)
