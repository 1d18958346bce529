"""The benchmarks' harness (``bench/common.py``): one JSON line, hashes, the stale check and
the child runner, each run for real."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from common import emit, files_hash, run_child, stale  # noqa: E402


def test_emit_prints_one_json_line(capsys):
    emit({"benchmark": "x", "value": 0.5})
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and json.loads(out) == {"benchmark": "x", "value": 0.5}


def test_files_hash_is_of_paths_and_bytes_in_path_order(tmp_path):
    first, second = ROOT / "README.md", ROOT / "Makefile"
    assert files_hash([first, second]) == files_hash([second, first])
    assert files_hash([first]) != files_hash([second])
    assert len(files_hash([first])) == 16


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
