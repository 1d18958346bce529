"""The progress line: what ran, what was stopped by which verdict, what only got a label."""

from types import SimpleNamespace

from sweep.progress import ProgressCallback


def trial(status: str, verdict: str, objective: float, trial_id: str):
    return SimpleNamespace(
        status=status, trial_id=trial_id, last_result={"verdict": verdict, "objective": objective}
    )


def test_stopped_and_labelled_verdicts_are_told_apart():
    progress = ProgressCallback("val_uar", "max", total=6, stopping=("nan", "g_overpowers"))
    line = progress.line(
        [
            trial("TERMINATED", "nan", float("nan"), "a"),
            trial("TERMINATED", "d_overpowers", 0.9, "b"),
            trial("TERMINATED", "g_overpowers", 0.95, "f"),
            trial("TERMINATED", "healthy", 0.6, "c"),
            trial("RUNNING", "healthy", 0.7, "d"),
            trial("ERROR", "healthy", 0.1, "e"),
        ]
    )
    assert "1 running, 0 pending, 4/6 done" in line
    assert "2 stopped by verdict: g_overpowers 1, nan 1; 1 labelled, ran on: d_overpowers 1" in line
    assert "1 errored" in line
    # a stopped trial is no candidate for the best (Optuna prunes it); a labelled one is
    assert line.endswith("best val_uar 0.9000 (b)")
