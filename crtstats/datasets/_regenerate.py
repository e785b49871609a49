"""Rewrite the shipped example CSV files: ``python -m crtstats.datasets._regenerate``.

Run only when :func:`simulate_trial` changes on purpose; ``tests/test_datasets.py``
fails while the shipped copy and the function disagree.
"""

from __future__ import annotations

from crtstats.datasets._example import EXAMPLE_SEED, example_paths
from crtstats.datasets._simulate import simulate_trial
from crtstats.io import write_csv


def main() -> None:
    """Simulate the example trial with :data:`EXAMPLE_SEED` and write its six tables."""
    tables = simulate_trial(seed=EXAMPLE_SEED).tables()
    for name, path in example_paths().items():
        write_csv(tables[name], path)


if __name__ == "__main__":
    main()
