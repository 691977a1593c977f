"""The runner's stop request (lfcs.running.training._StopRequest): it checkpoints first, then hands the signal to
the job system (submitit's requeue) or returns normally without one. The cluster itself: tests/test_slurm.py."""

from __future__ import annotations

import os
import signal

import pytest

from lfcs.running.training import _StopRequest


def test_stop_request_checkpoints_first_then_hands_the_signal_to_the_job_system():
    """submitit's handler (here: a recorder) runs after lfcs's episode, and the process exits without a result."""
    seen = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: seen.append(signum))
    try:
        with pytest.raises(SystemExit):
            with _StopRequest() as stop:
                os.kill(os.getpid(), signal.SIGUSR2)
                assert stop.flag and not seen  # the episode ends and checkpoints before the job system acts
        assert seen == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_stop_request_without_a_job_system_returns_normally():
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with _StopRequest() as stop:
            os.kill(os.getpid(), signal.SIGTERM)
        assert stop.flag
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)
