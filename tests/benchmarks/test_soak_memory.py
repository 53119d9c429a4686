"""The soak's memory arithmetic and sampler."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from benchmarks.soak_memory import RssSample, RssSampler, growth, process_rss_mib


def test_growth_runs_from_the_first_samples_after_warm_up_to_the_last() -> None:
    samples = [RssSample(at, server, 10 * server) for at, server in
               [(0, 50.0), (1, 100.0), (2, 100.0), (3, 100.0), (4, 104.0), (5, 104.0), (6, 104.0)]]
    found = growth(samples, warm_from=1)
    assert (found.server_start, found.server_end) == (100.0, 104.0)
    assert found.server_percent == pytest.approx(4.0) and found.group_percent == pytest.approx(4.0)


def test_the_sampler_reads_a_process_group_leader_and_ends_with_a_sample() -> None:
    script = "import time; print('ready', flush=True); time.sleep(30)"
    leader = subprocess.Popen([sys.executable, "-c", script], start_new_session=True, stdout=subprocess.PIPE)
    try:
        assert leader.stdout is not None and leader.stdout.readline() == b"ready\n"  # done starting up
        with RssSampler(leader.pid, interval=0.01) as sampler:
            time.sleep(0.1)
        alive = process_rss_mib(leader.pid)
    finally:
        leader.kill()
        leader.wait()
    assert len(sampler.samples) >= 2 and alive is not None
    assert all(0 < s.server_mib == pytest.approx(s.group_mib) for s in sampler.samples)  # a group of one
    assert process_rss_mib(leader.pid) is None
