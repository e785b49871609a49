"""Power simulation on threaded workers: the per-process caches are shared safely."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

from crtstats.power import BinaryDesign, TrialDesign, _batched, _engine, _simulate, simulate
from crtstats.runner import parse_plan


def _plan() -> object:
    lmm = {"name": "lmm", "fitter": "lmm", "role": "primary", "data": "scores",
           "formula": "total ~ arm * review + stratum", "term": "arm[T.intervention]"}
    glmm = {"name": "glmm", "fitter": "glmm", "role": "primary", "data": "admissions",
            "where": {"period": "follow_up"}, "formula": "admitted ~ arm + stratum",
            "term": "arm[T.intervention]", "options": {"family": "binomial"}}
    return parse_plan({"seed": 13, "data": {"example": True}, "analysis": [lmm, glmm],
                       "design": {"intervention": 4, "control": 4, "strata": 2,
                                  "mean_cluster_size": 12, "reviews_missing": 0.2,
                                  "fidelity": {}, "admitted": {"risk": 0.3}},
                       "output": {"tables": [], "figures": []}})


def _clear_caches() -> None:
    _engine._LABELS.clear()
    _batched._FITTERS.clear()


def test_threaded_dask_workers_give_the_single_process_results(
        monkeypatch: pytest.MonkeyPatch) -> None:
    distributed = pytest.importorskip("dask.distributed")
    # blocks of 2 trials: many blocks of the same entries run at once on the threads,
    # each starting with empty caches, so they race to fill the label and fitter caches
    monkeypatch.setattr(_simulate, "BATCH_BLOCK", 2)
    monkeypatch.setattr(_batched, "_CACHE_SIZE", 3)  # and evict while others read
    plan = _plan()
    _clear_caches()
    one = simulate(plan, sims=16, engine="batched")  # type: ignore[arg-type]
    _clear_caches()
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=6,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        threaded = simulate(plan, sims=16, engine="batched",  # type: ignore[arg-type]
                            scheduler=client)
    assert (one.trials["error"] == "").all()
    pd.testing.assert_frame_equal(one.trials, threaded.trials)
    pd.testing.assert_frame_equal(one.summary, threaded.summary)


def test_fitter_cache_under_threads_returns_each_keys_own_fitter(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_batched, "_CACHE_SIZE", 2)
    _batched._FITTERS.clear()

    def get(k: int) -> tuple[int, object]:
        return k, _batched.cached_fitter(("key", k % 5), lambda: ("built", k % 5))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(get, range(400)))
    assert all(value == ("built", k % 5) for k, value in results)
    assert len(_batched._FITTERS) <= 2
    _batched._FITTERS.clear()


def test_labels_cache_is_filled_once_per_entry_under_threads() -> None:
    design = TrialDesign(intervention=3, control=3, fidelity=None,
                         admitted=BinaryDesign(risk=0.3), mean_cluster_size=10.0, seed=2)
    _clear_caches()
    tasks = _simulate._tasks(*_simulate._resolve(design), (0.0,), 12, 2, ("admitted-glmm",),
                             "batched")
    tasks = [_engine.Task(plan=t.plan, design=t.design, factor=t.factor, seed=t.seed,
                          trials=(k,), entries=t.entries, engine=t.engine)
             for t in tasks for k in t.trials]
    with ThreadPoolExecutor(max_workers=6) as pool:
        threaded = pd.concat(list(pool.map(_engine.run_task, tasks)), ignore_index=True)
    _clear_caches()
    alone = pd.concat([_engine.run_task(t) for t in tasks], ignore_index=True)
    pd.testing.assert_frame_equal(threaded, alone)
    assert len(_engine._LABELS) == 1
    _clear_caches()
