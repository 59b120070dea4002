"""training.EpochLog and the epochs that ValidationCheck and RankingEarlyStopping report (Results.record's epochs=)."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from recsys_helpers.training import EpochLog, ValidationCheck  # noqa: E402


def _fit(scores, epochs, **kwargs):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer=keras.initializers.Zeros())])
    model.compile("sgd", "mse")
    values = iter(scores)
    check = ValidationCheck(lambda: next(values), **kwargs)
    model.fit(np.zeros((4, 2)), np.zeros(4), epochs=epochs, verbose=0, callbacks=[check])
    return check


def test_validation_check_reports_epochs_run_best_and_cap():
    check = _fit([0.1, 0.3, 0.2, 0.25, 0.2], epochs=10, patience=2)  # best at 2, stops after 4
    log = check.log
    assert (log.ran, log.best, log.cap, log.stopped_early) == (4, 2, 10, True)
    capped = _fit([0.1, 0.2, 0.3], epochs=3, patience=2)
    assert (capped.log.ran, capped.log.best, capped.log.cap, capped.log.stopped_early) == (3, 3, 3, False)


def test_validation_check_counts_the_epochs_between_checks():
    check = _fit([0.1, 0.3, 0.2, 0.2], epochs=9, patience=2, every=2)  # checks after 2, 4, 6, 8: best 4, stops at 8
    assert (check.log.ran, check.log.best, check.log.cap) == (8, 4, 9)
    improving = _fit([0.1, 0.2, 0.3, 0.4], epochs=9, patience=2, every=2)  # the cap ends it after epoch 9, unchecked
    assert (improving.log.ran, improving.log.best, improving.log.cap) == (9, 8, 9)


@pytest.mark.parametrize("ran, best, cap", [(3, 4, 10), (11, 2, 10), (0, 0, 5), (2.5, 1, 3), (True, 1, 1)])
def test_impossible_epoch_logs_are_refused(ran, best, cap):
    with pytest.raises(ValueError):
        EpochLog(ran, best, cap)


def test_an_epoch_log_of_a_run_that_ended_at_its_cap_did_not_stop_early():
    assert not EpochLog(5, 5, 5).stopped_early and EpochLog(4, 2, 5).stopped_early
    assert repr(EpochLog(4, 2, 5)) == "EpochLog(ran=4, best=2, cap=5)"
