"""``launch.py dashboard`` on a live SQLite sweep: optuna-dashboard's API polled for the whole
sweep (no lock errors, no failed trial), then the page in a real headless browser."""

import html
import json
import re
import shutil
import signal
import subprocess
import time
import urllib.request

import optuna
import pytest
from optuna.trial import TrialState

from sweep.settings import SweepSettings
from sweep.study_storage import open_storage
from tests.helpers import ROOT, free_port, launch_command, wait_for

pytestmark = pytest.mark.e2e  # real sweeps, clusters or servers: `make test` runs them

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
SPACE = """
objective: {metric: val_uar, mode: max}
max_epochs: 3
base:
  model: sgan
  data: {features: [a_feat], tasks: category:4:category, test_idx: "0,1", valid_idx: "2,3",
         unlabelled_idx: "10:11", r_nrow: 32, r_ncol: 16}
  sgan: {latent_dim: 16, depth_G: 3, n_kernels_G: [8, 4, 1], cnn_n_row_G: 3, cnn_n_col_G: 3,
         depth_D: 1, n_kernels_D: [8], cnn_n_row_D: 3, cnn_n_col_D: 3, pool_n_row_D: [2],
         pool_n_col_D: [2], n_node: 16, d_lr: 1.0e-4, g_lr: 1.0e-3, instance_noise: 0.3,
         label_smoothing: 0.3}
  train: {batch_size: 16, patience: 0, save_img_interval: 1}
params:
  train.seed: {type: int, low: 0, high: 1000}
"""


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def study_exists(storage: str) -> bool:
    try:
        return bool(optuna.get_all_study_names(open_storage(storage)))
    except Exception:  # the database is being created
        return False


@pytest.mark.skipif(BROWSER is None, reason="chromium missing (apt-get install chromium)")
def test_the_dashboard_follows_a_live_sqlite_sweep_and_shows_it(demo_corpus, tmp_path):
    corpus = demo_corpus(12, 12, seed=2)
    (tmp_path / "space.yaml").write_text(SPACE)
    out = tmp_path / "sweep"
    sweep_log = tmp_path / "sweep.log"
    with open(sweep_log, "w") as log:
        sweep = subprocess.Popen(
            launch_command(
                "sweep",
                "--space",
                tmp_path / "space.yaml",
                "--data",
                corpus,
                "--samples",
                4,
                "--concurrency",
                2,
                "--num-cpus",
                2,
                "--out",
                out,
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    storage = SweepSettings(out=str(out), space="demo").resolved_study_url
    dashboard = None
    try:
        wait_for(
            lambda: (out / "sweep.yaml").exists() and study_exists(storage),
            300,
            "the sweep's study exists",
        )
        # the sweep's driver is held still until the dashboard answers, so the dashboard
        # follows a live sweep however long either takes to start
        sweep.send_signal(signal.SIGSTOP)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        dashboard_log = tmp_path / "dashboard.log"
        dashboard = subprocess.Popen(
            launch_command("dashboard", out, "--port", port),
            stdout=open(dashboard_log, "w"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        wait_for(lambda: _answers(f"{base}/api/studies"), 120, "the dashboard answers")
        sweep.send_signal(signal.SIGCONT)
        _, listing = get(f"{base}/api/studies")
        (summary,) = json.loads(listing)["study_summaries"]
        study_url = f"{base}/api/studies/{summary['study_id']}"
        statuses = []
        while sweep.poll() is None:  # as the page does, every half second, the whole sweep
            statuses.append(get(f"{study_url}?after=0")[0])
            time.sleep(0.5)
            assert len(statuses) < 2400, "the sweep did not end in 20 minutes"
        output = sweep_log.read_text()
        assert sweep.returncode == 0, output[-3000:]
        assert statuses and set(statuses) == {200}, statuses
        logs = output + dashboard_log.read_text()
        assert "database is locked" not in logs and "OperationalError" not in logs, logs[-3000:]
        study = optuna.load_study(study_name=summary["study_name"], storage=open_storage(storage))
        assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4

        status, body = get(f"{study_url}?after=0")
        detail = json.loads(body)
        assert status == 200 and "Failure census" in detail["note"]["body"]
        assert all(trial["artifacts"] for trial in detail["trials"])  # each one's images
        artifact = detail["trials"][0]["artifacts"][0]
        assert artifact["filename"].endswith(".png") and artifact["mimetype"] == "image/png"

        page = _rendered(f"{base}/dashboard/studies/{summary['study_id']}/trials")
        assert "4 Trials" in page and "verdict healthy" in page, page[:3000]
    finally:
        for process in (sweep, dashboard):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.terminate()
                process.wait(timeout=60)


def _answers(url: str) -> bool:
    try:
        return get(url)[0] == 200
    except OSError:  # not listening yet
        return False


def _rendered(url: str) -> str:
    """The page's text after its scripts ran, from headless Chromium."""
    done = subprocess.run(
        [
            BROWSER,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    dom = re.sub(r"<(style|script)\b.*?</\1>", " ", done.stdout, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))
