"""Lining up two sequences: the longest common subsequence, used to match the layers of instances of
one block (backend/pieces.py) and of one imported class (importer/optional.py)."""

from __future__ import annotations

from collections.abc import Callable


def common_subsequence(n: int, m: int, same: Callable[[int, int], bool],
                       score: Callable[[int, int], int] | None = None) -> list[tuple[int, int]]:
    """Matched (i, j) pairs of the longest common subsequence of two sequences of lengths `n` and `m`
    (`same(i, j)`: item i of the first may match item j of the second); among equally long ones, the
    one with the highest total `score` of its pairs, then the one matching earliest in the first."""
    weight = score or (lambda i, j: 0)
    best = [[(0, 0)] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            best[i][j] = max(best[i + 1][j], best[i][j + 1])
            if same(i, j):
                diagonal = best[i + 1][j + 1]
                best[i][j] = max(best[i][j], (diagonal[0] + 1, diagonal[1] + weight(i, j)))
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if same(i, j):
            diagonal = best[i + 1][j + 1]
            if best[i][j] == (diagonal[0] + 1, diagonal[1] + weight(i, j)):
                pairs.append((i, j))
                i, j = i + 1, j + 1
                continue
        if best[i + 1][j] == best[i][j]:
            i += 1
        else:
            j += 1
    return pairs
