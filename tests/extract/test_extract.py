"""WAV + label sheet -> h5: real audio from espeak-ng, real resampling, real h5 files; every
bad input is one line, exit 2, and no output file."""

import csv
import importlib.util
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile

from sermodels.config import DataConfig
from sermodels.data import load_corpus
from sermodels.data.extract import ExtractConfig, extract
from sermodels.errors import ConfigError, DataError
from tests.helpers import ROOT, launch

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")


def tts_module():
    spec = importlib.util.spec_from_file_location("tts_corpus", ROOT / "examples/tts/tts_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tts_set(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng missing (.ci/run installs it)")
    return tts_module().synthesize(tmp_path_factory.mktemp("tts"), speakers=3, sentences=2)


def test_tts_speech_becomes_the_h5_contract(tts_set, tmp_path):
    wav_dir, sheet = tts_set
    out = tmp_path / "tts.h5"
    summary = extract(wav_dir, sheet, out, ExtractConfig(workers=2), progress=False)
    assert summary["files"] == 24 and summary["speakers"] == 3
    with h5py.File(out) as h5:
        features, labels = h5["a_feat"][:], h5["label"][:]
        starts, ends = h5["start_indice"][:], h5["end_indice"][:]
    assert features.shape[1:] == (10, 1, 10, 256) and np.isfinite(features).all()
    assert len(labels) == len(features) == summary["windows"] == ends[-1]
    assert list(starts[1:]) == list(ends[:-1])  # contiguous, one fold per speaker
    for fold, (start, end) in enumerate(zip(starts, ends, strict=True)):
        assert set(labels[start:end, 3]) == {fold}  # speaker id column
    assert set(labels[:, 2]) == {0, 1, 2, 3}  # neutral, happy, sad, angry
    assert set(labels[:, 5]) <= {0, 1}  # gender
    # espeak-ng writes 22.05 kHz: resampled to 16 kHz, 1 s windows of 100 frames
    assert soundfile.info(next(wav_dir.glob("*.wav"))).samplerate != 16000
    corpus = load_corpus(
        DataConfig(features=["a_feat"], tasks="category:4:2", test_idx="0", valid_idx="1"),
        str(out),
        "sequence",
    )
    assert len(corpus.train) == ends[2] - starts[2]


def test_loud_speech_has_more_energy_than_soft_speech(tts_set, tmp_path):
    wav_dir, _ = tts_set
    config = ExtractConfig()
    from sermodels.data.extract import spectrogram

    angry = spectrogram(wav_dir / "spk0_angry_0.wav", config)
    sad = spectrogram(wav_dir / "spk0_sad_0.wav", config)
    assert np.exp(angry).mean() > np.exp(sad).mean()  # amplitude 190 vs 70


@needs_espeak
@pytest.mark.e2e  # a real sweep from the command line
def test_tts_extract_then_sweep_from_the_cli(tts_set, tmp_path):
    wav_dir, sheet = tts_set
    made = launch("extract", wav_dir, sheet, tmp_path / "tts.h5", "--quiet")
    assert made.returncode == 0, made.stderr[-2000:]
    assert "3 speakers" in made.stdout
    space = ROOT / "examples" / "tts" / "tts_space.yaml"
    swept = launch(
        "sweep",
        "--space",
        space,
        "--data",
        tmp_path / "tts.h5",
        "--samples",
        2,
        "--max-epochs",
        1,
        "--out",
        tmp_path / "sweep",
        "--num-cpus",
        2,
    )
    assert swept.returncode == 0, swept.stdout[-2000:] + swept.stderr[-2000:]
    assert "(2 trials)" in swept.stdout


def write_wav(path: Path, samples, rate=16000):
    soundfile.write(path, np.asarray(samples, np.float32), rate)


def tone(seconds=0.5, rate=16000):
    t = np.arange(int(seconds * rate)) / rate
    return 0.3 * np.sin(2 * np.pi * 220 * t)


def sheet(tmp_path, rows, header=("file", "speaker", "category")):
    path = tmp_path / "labels.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: [("missing.wav", "s1", "happy")], "WAV not found"),
        (
            lambda d: (d / "bad.wav").write_bytes(b"not audio") and [("bad.wav", "s1", "happy")],
            "unreadable audio",
        ),
        (lambda d: write_wav(d / "e.wav", []) or [("e.wav", "s1", "happy")], "empty audio"),
        (
            lambda d: write_wav(d / "z.wav", np.zeros(8000)) or [("z.wav", "s1", "happy")],
            "silent audio",
        ),
        (
            lambda d: write_wav(d / "t.wav", tone()) or [("t.wav", "s1", "jubilant")],
            "unknown category 'jubilant'",
        ),
        (lambda d: write_wav(d / "t.wav", tone()) or [("t.wav", "", "happy")], "empty speaker"),
        (
            lambda d: write_wav(d / "t.wav", tone(rate=8000), 8000) or [("t.wav", "s1", "sad")],
            "sample rate 8000 Hz, expected 16000 Hz",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_output(tmp_path, setup, message):
    wav_dir = tmp_path / "wav"
    wav_dir.mkdir()
    labels = sheet(tmp_path, setup(wav_dir))
    result = launch("extract", wav_dir, labels, tmp_path / "out.h5", "--no-resample", "--quiet")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr[-2000:]
    assert message in errors[0]
    assert not list(tmp_path.glob("out.h5*"))  # nothing half-written


def test_a_sheet_without_the_speaker_column_is_refused(tmp_path):
    labels = sheet(tmp_path, [("a.wav", "happy")], header=("file", "category"))
    with pytest.raises(DataError, match=r"missing column\(s\) \['speaker'\]"):
        extract(tmp_path, labels, tmp_path / "out.h5", progress=False)


def test_short_clips_are_padded_to_one_window_and_rates_resampled(tmp_path):
    write_wav(tmp_path / "a.wav", tone(0.3, 22050), 22050)
    write_wav(tmp_path / "b.wav", tone(2.5), 16000)
    labels = sheet(tmp_path, [("a.wav", "s1", "0"), ("b.wav", "s2", "3")])
    summary = extract(
        tmp_path, labels, tmp_path / "out.h5", ExtractConfig(workers=1), progress=False
    )
    with h5py.File(tmp_path / "out.h5") as h5:
        labels = h5["label"][:]
    # 0.3 s -> one padded window; 2.5 s = 248 frames -> windows start every 50 frames
    assert summary["windows"] == 1 + 3
    assert list(labels[:, 2]) == [0, 3, 3, 3]


def test_the_source_preset_is_librosas_decibel_spectrogram(tmp_path):
    from sermodels.data.extract import SOURCE_PRESET, spectrogram

    config = ExtractConfig(**SOURCE_PRESET)
    rate, n_fft, amplitude, k = 16000, 512, 0.3, 40  # a sine exactly on FFT bin 40 (1250 Hz)
    seconds = np.arange(rate) / rate
    write_wav(tmp_path / "sine.wav", amplitude * np.sin(2 * np.pi * k * rate / n_fft * seconds))
    frames = spectrogram(tmp_path / "sine.wav", config)
    assert frames.shape == (1 + rate // 128, 257)  # librosa's centred frame count, all bins
    middle = frames[len(frames) // 2]
    assert int(np.argmax(middle)) == k
    # |X[k]| = A/2 * sum(periodic Hann of 512) = A/2 * 256; dB of the power: 20 log10(|X|^2)
    assert middle[k] == pytest.approx(40 * np.log10(amplitude * n_fft / 4), abs=0.05)
    assert frames.min() >= frames.max() - 80.0 - 1e-4  # top_db 80


def test_label_columns_choose_the_layout_and_the_parameters_are_saved(tmp_path):
    wav_dir = tmp_path / "wav"
    wav_dir.mkdir()
    for name in ("a.wav", "b.wav"):
        write_wav(wav_dir / name, tone(1.2))
    labels = sheet(tmp_path, [["a.wav", "s1", "happy"], ["b.wav", "s2", "sad"]])
    config = ExtractConfig(label_columns=("category", "speaker"), workers=1)
    extract(wav_dir, labels, tmp_path / "out.h5", config, progress=False)
    with h5py.File(tmp_path / "out.h5") as h5:
        assert h5["label"].attrs["columns"] == "category,speaker"
        assert h5["label"][:, 0].tolist()[0] == 1  # happy
        saved = json.loads(h5.attrs["extraction"])
    assert ExtractConfig.from_parameters(saved, workers=1) == config
    with pytest.raises(ConfigError, match="--label-columns"):
        ExtractConfig(label_columns=("category", "mood"))
