"""The benchmarks' harness (``bench/common.py``, ``bench/page_cache.py``): one JSON line,
the stale check, the child runner and a file's pages sent out of the page cache, each
run for real."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import pytest  # noqa: E402
from common import emit, run_child, spread, stale  # noqa: E402
from page_cache import Evicting, cached_share, cold_read_mb_s, evict  # noqa: E402

from tests.helpers import poll  # noqa: E402


def test_emit_prints_one_json_line(capsys):
    emit({"benchmark": "x", "value": 0.5})
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and json.loads(out) == {"benchmark": "x", "value": 0.5}


def test_a_stale_cache_says_so_on_stderr(capsys):
    assert stale("aaaa", "aaaa", "the runs") is False
    assert capsys.readouterr().err == ""
    assert stale("aaaa", "bbbb", "the runs") is True
    assert "the runs was recorded with other code (aaaa, now bbbb)" in capsys.readouterr().err


def test_a_child_that_writes_more_than_a_pipe_holds_runs_to_its_end():
    script = "import sys; sys.stdout.write('x' * 1_000_000); sys.exit(3)"
    child = run_child([sys.executable, "-c", script], sample_pss=False, every=0.05)
    assert child.returncode == 3 and len(child.output) == 1_000_000 and child.peak_pss == 0


def test_the_child_trees_memory_is_sampled_while_it_runs():
    script = (
        "import time; block = bytearray(200 * 2**20); "
        "block[::4096] = b'x' * len(block[::4096]); time.sleep(1.5)"  # every page touched
    )
    child = run_child([sys.executable, "-c", script], sample_pss=True, every=0.05)
    assert child.returncode == 0
    assert child.peak_pss > 200 * 2**20  # the touched block, counted while it was held


def test_a_files_pages_leave_the_page_cache_and_the_check_sees_it(tmp_path):
    corpus = tmp_path / "corpus.bin"
    corpus.write_bytes(os.urandom(16 * 2**20))  # dirty pages: evict writes them out first
    corpus.read_bytes()
    assert cached_share(corpus) > 0.9
    evict(corpus)
    assert cached_share(corpus) < 0.05
    assert cold_read_mb_s(corpus) > 0
    assert cached_share(corpus) > 0.9  # the read brought the pages back


def test_pages_another_process_reads_are_evicted_while_the_block_runs(tmp_path):
    corpus = tmp_path / "corpus.bin"
    corpus.write_bytes(os.urandom(16 * 2**20))
    reader = [sys.executable, "-c", f"open({str(corpus)!r}, 'rb').read()"]
    with Evicting(corpus, every=0.1) as evicting:
        assert evicting.cached_after < 0.05
        subprocess.run(reader, check=True)
        assert poll(lambda: cached_share(corpus) < 0.05, 10, every=0.05)
    subprocess.run(reader, check=True)
    assert cached_share(corpus) > 0.9  # after the block, pages stay


def test_eviction_needs_a_positive_period(tmp_path):
    with pytest.raises(ValueError, match="every must be > 0 seconds, got 0"):
        Evicting(tmp_path / "x", every=0)


def test_spread_gives_mean_sd_range_and_the_values():
    assert spread([1.0, 2.0, 4.0]) == {
        "mean": 2.333,
        "sd": 1.528,
        "min": 1.0,
        "max": 4.0,
        "values": [1.0, 2.0, 4.0],
    }
    assert spread([0.5])["sd"] is None


def test_the_overhead_timeline_splits_a_sweeps_wall_time_into_parts_that_add_up():
    from sweep_overhead import timeline

    def trial(setup, starts, durations):
        return [
            {"trial_setup_seconds": setup, "epoch_started_at": start, "time_this_iter_s": d}
            for start, d in zip(starts, durations, strict=True)
        ]

    # sweep starts at 100: the first trial builds 105-106, epochs 106-108 and 108.5-110;
    # the second builds 110.25-110.75, its one epoch 110.75-112; the sweep returns at 113
    trials = [trial(1.0, [106.0, 108.5], [2.0, 1.5]), trial(0.5, [110.75], [1.25])]
    parts = timeline(trials, started=100.0, ended=113.0)
    assert parts == pytest.approx(
        {
            "first_trial_wait_s": 5.0,
            "trial_setup_s": 1.5,
            "epochs_s": 4.75,
            "between_epochs_s": 0.5,
            "between_trials_s": 0.25,
            "after_last_s": 1.0,
        }
    )
    assert sum(parts.values()) == pytest.approx(13.0)
