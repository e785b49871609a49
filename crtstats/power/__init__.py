"""Power and sample size for cluster-randomised trials: closed forms with t on the
analysis's df."""

from crtstats.power._closed import (
    ClusterSizeResult,
    PowerResult,
    ancova,
    binary,
    cluster_size_needed,
    continuous,
    rates,
)

__all__ = [
    "ClusterSizeResult",
    "PowerResult",
    "ancova",
    "binary",
    "cluster_size_needed",
    "continuous",
    "rates",
]
