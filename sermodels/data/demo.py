"""A deterministic, synthetic demo corpus in the h5 contract (no licensed data needed).

Audio rows are log-power spectrograms whose class-dependent structure mimics prosody:
pitch height and movement, energy, speaking rate and spectral tilt, with speaker variation
(gender, vocal tract) and noise. Video rows are 48x48 face-like images whose eyebrows and
mouth follow the emotion. Speakers 10 and 11 are meant to be used as unlabelled folds.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from sermodels.data.contract import write_label_columns

CATEGORIES = ("neutral", "happy", "angry", "sad")
LABEL_COLUMNS = (
    "arousal",
    "valence",
    "category",
    "speaker",
    "corpus",
    "gender",
    "arousal_continuous",
    "valence_continuous",
)
LABEL_KINDS = ("class", "class", "class", "id", "id", "class", "continuous", "continuous")
# Per category: pitch factor, pitch slope (relative change over an utterance), energy (dB),
# syllable rate (Hz), spectral tilt (dB per octave), mean arousal, mean valence.
PROSODY = {
    0: (1.00, 0.00, 0.0, 4.0, -6.0, 0.0, 0.0),
    1: (1.22, 0.25, 4.0, 5.5, -5.0, 0.6, 0.7),
    2: (1.12, -0.20, 7.0, 5.5, -3.0, 0.8, -0.6),
    3: (0.90, -0.12, -4.0, 3.0, -9.0, -0.5, -0.6),
}
CLASS_SHARE = (0.4, 0.2, 0.2, 0.2)  # neutral dominates, as in acted corpora such as IEMOCAP
LONG_FRAMES, SHORT_FRAMES, N_BINS, FACE = 10, 10, 64, 48
SAMPLE_RATE_HZ = 8000
DEMO_PATH = Path(__file__).resolve().parents[2] / "demo_data" / "demo.h5"


def demo_corpus_path() -> Path:
    """The built-in demo corpus (``demo_data/demo.h5``), written on first use."""
    if not DEMO_PATH.exists():
        write_demo_corpus(DEMO_PATH)
    return DEMO_PATH


@dataclass(frozen=True)
class DemoShape:
    """Shapes of a demo corpus: ``(long_frames, 1, short_frames, bins)`` audio rows under
    ``audio_key`` and 48 x 48 faces under ``v_feat``."""

    bins: int = N_BINS
    long_frames: int = LONG_FRAMES
    short_frames: int = SHORT_FRAMES
    audio_key: str = "a_feat"

    def __post_init__(self) -> None:
        for name in ("bins", "long_frames", "short_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def write_demo_corpus(
    path: str | Path,
    n_speakers: int = 12,
    per_speaker: int = 40,
    seed: int = 0,
    shape: DemoShape | None = None,
    progress: bool = False,
) -> Path:
    """Write the demo corpus to ``path`` atomically (it appears only when complete), one
    speaker at a time, so memory stays bounded by a speaker whatever the corpus's size.

    Args:
        path: output h5 file.
        n_speakers: speakers, one fold each (the last two are meant as unlabelled folds).
        per_speaker: utterances per speaker.
        seed: everything is a function of it (and of ``shape``).
        shape: feature shapes (default: 10 x 1 x 10 x 64 audio).
        progress: show a progress bar (speakers written).

    Example:
        >>> write_demo_corpus("demo.h5", n_speakers=4, per_speaker=8)  # doctest: +SKIP
    """
    if n_speakers < 2 or per_speaker < 1:
        raise ValueError("demo corpus needs n_speakers >= 2 and per_speaker >= 1")
    from tqdm import tqdm

    shape = shape or DemoShape()
    path = Path(path)
    rng = np.random.default_rng(seed)
    n = n_speakers * per_speaker
    audio_row = (shape.long_frames, 1, shape.short_frames, shape.bins)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(suffix=".h5.part", dir=path.parent)
    os.close(handle)
    try:
        with h5py.File(tmp, "w") as h5:
            audio = h5.create_dataset(
                shape.audio_key, (n, *audio_row), np.float32, chunks=(1, *audio_row)
            )
            video = h5.create_dataset(
                "v_feat", (n, 1, 1, FACE, FACE), np.float32, chunks=(1, 1, 1, FACE, FACE)
            )
            labels = h5.create_dataset("label", (n, len(LABEL_COLUMNS)), np.float32)
            write_label_columns(labels, list(LABEL_COLUMNS), list(LABEL_KINDS))
            starts = np.arange(n_speakers) * per_speaker
            h5.create_dataset("start_indice", data=starts)
            h5.create_dataset("end_indice", data=starts + per_speaker)
            h5.attrs["categories"] = ",".join(CATEGORIES)
            for speaker in tqdm(
                range(n_speakers), unit="speaker", desc="demo-data", disable=not progress
            ):
                rows = _speaker_rows(rng, speaker, per_speaker, shape)
                block = slice(speaker * per_speaker, (speaker + 1) * per_speaker)
                audio[block], video[block], labels[block] = rows
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _speaker_rows(rng, speaker: int, count: int, shape: DemoShape):
    """One speaker's audio, faces and labels (the draws in the order the corpus defines)."""
    voice = _speaker(rng, speaker)
    audio = np.empty((count, shape.long_frames, 1, shape.short_frames, shape.bins), np.float32)
    video = np.empty((count, 1, 1, FACE, FACE), np.float32)
    labels = np.empty((count, len(LABEL_COLUMNS)), np.float32)
    for i in range(count):
        category = int(rng.choice(4, p=CLASS_SHARE))
        audio[i] = _spectrogram(rng, voice, category, shape).reshape(audio.shape[1:])
        video[i, 0, 0] = _face(rng, voice, category)
        labels[i] = _labels(rng, voice, speaker, category)
    return audio, video, labels


def _speaker(rng, speaker) -> dict:
    gender = speaker % 2  # 0 male, 1 female
    return {
        "gender": gender,
        "f0": (120.0 if gender == 0 else 210.0) * rng.uniform(0.85, 1.15),
        "tract": rng.uniform(0.9, 1.1) * (1.0 if gender == 0 else 1.15),
        "loudness": rng.normal(0.0, 2.0),
        "face": rng.uniform(0.55, 0.8),
        "corpus": speaker % 3,
    }


def _spectrogram(rng, voice, category, shape: DemoShape) -> np.ndarray:
    pitch, slope, energy, rate, tilt, _, _ = PROSODY[category]
    frames = shape.long_frames * shape.short_frames
    n_bins = shape.bins
    t = np.linspace(0.0, 1.0, frames)
    f0 = voice["f0"] * pitch * rng.uniform(0.88, 1.12)
    contour = f0 * (1 + (slope + rng.normal(0, 0.08)) * t + 0.03 * np.sin(2 * np.pi * 3 * t))
    freqs = (np.arange(n_bins) + 0.5) * (SAMPLE_RATE_HZ / 2 / n_bins)
    harmonics = np.arange(1, 40)[None, :] * contour[:, None]  # (frames, harmonics)
    octaves = np.log2(np.maximum(harmonics, 1.0) / 100.0)
    tilt_db = (tilt + rng.normal(0, 1.5)) * octaves
    formants = sum(
        10 * np.exp(-((harmonics - f * voice["tract"]) ** 2) / (2 * 250.0**2))
        for f in (500.0, 1500.0, 2500.0)
    )
    amplitude_db = tilt_db + formants + np.where(harmonics < SAMPLE_RATE_HZ / 2, 0.0, -200.0)
    syllables = np.abs(np.sin(np.pi * (rate + rng.normal(0, 0.6)) * t * 2 + rng.uniform(0, 3)))
    voiced = (syllables > 0.3)[:, None]
    gain_db = energy + voice["loudness"] + rng.normal(0, 2.5) + 20 * np.log10(syllables + 0.05)
    power_db = (gain_db[:, None] + amplitude_db)[:, :, None]
    bins = np.exp(-((freqs[None, None, :] - harmonics[:, :, None]) ** 2) / (2 * 40.0**2))
    power = (10 ** (power_db / 10) * bins).sum(axis=1) * voiced
    noise_floor = 10 ** ((rng.normal(-25, 2)) / 10)
    log_power = np.log(power + noise_floor) + rng.normal(0, 0.6, power.shape)
    return log_power.astype(np.float32)


def _face(rng, voice, category) -> np.ndarray:
    _, _, _, _, _, arousal, valence = PROSODY[category]
    y, x = np.mgrid[0:FACE, 0:FACE].astype(np.float32)
    cy, cx = 24 + rng.normal(0, 1.5), 24 + rng.normal(0, 1.5)
    face = ((x - cx) / 16) ** 2 + ((y - cy) / 20) ** 2 < 1
    image = np.where(face, voice["face"], 0.1).astype(np.float32)
    for side in (-1, 1):
        eye = (x - cx - side * 7) ** 2 + (y - cy + 5) ** 2 < 4 + 2 * max(arousal, 0)
        image[eye] = 0.15
        brow_height = cy - 10 - 2.0 * arousal + rng.normal(0, 0.8)
        brow_tilt = 0.25 * side * (1 if valence < -0.3 and arousal > 0 else -0.5 * (valence < 0))
        brow = (np.abs(x - cx - side * 7) < 4) & (
            np.abs(y - brow_height - brow_tilt * (x - cx - side * 7)) < 1
        )
        image[brow] = 0.2
    curve = (valence + rng.normal(0, 0.25)) * 0.08
    mouth_y = cy + 9 - curve * (x - cx) ** 2
    mouth = (np.abs(x - cx) < 7) & (np.abs(y - mouth_y) < 1 + 1.5 * max(arousal, 0))
    image[mouth] = 0.1
    image += rng.normal(0, 0.08, image.shape).astype(np.float32)
    return image


def _labels(rng, voice, speaker, category) -> np.ndarray:
    _, _, _, _, _, arousal, valence = PROSODY[category]
    a = float(np.clip(arousal + rng.normal(0, 0.25), -1, 1))
    v = float(np.clip(valence + rng.normal(0, 0.25), -1, 1))
    return np.array(
        [_tertile(a), _tertile(v), category, speaker, voice["corpus"], voice["gender"], a, v],
        np.float32,
    )


def _tertile(value: float) -> int:
    return 0 if value < -1 / 3 else (2 if value > 1 / 3 else 1)
