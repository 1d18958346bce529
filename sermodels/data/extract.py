"""WAV files + a label sheet -> the h5 data contract: log-power spectrograms cut into
(long_frames, 1, short_frames, bins) context windows, one label row per window, one fold per
speaker. Files are read and transformed in parallel and streamed into the h5 file, so memory
stays bounded by a few files, not the corpus.

Label columns of the output (``label``), in this order (``-1`` where the sheet has no value):

    0 arousal, 1 valence, 2 category, 3 speaker id, 4 corpus id, 5 gender (0 female,
    1 male), 6 utterance (row of the sheet)
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import scipy.signal
import soundfile
import soxr

from sermodels.data.contract import write_label_columns
from sermodels.errors import ConfigError, DataError

LABEL_COLUMNS = ("arousal", "valence", "category", "speaker", "corpus", "gender", "utterance")
REQUIRED = ("file", "speaker")
OPTIONAL = ("category", "arousal", "valence", "gender", "corpus")
CATEGORIES = (
    "neutral",
    "happy",
    "sad",
    "angry",
    "fear",
    "disgust",
    "surprise",
    "boredom",
    "calm",
    "frustrated",
    "excited",
)
GENDERS = {"f": 0, "female": 0, "w": 0, "woman": 0, "m": 1, "male": 1, "man": 1}
SCALES = ("ln", "db")
# The source extractor's log spectrogram (SER_FEAT_EXT, librosa): 512-point FFT over a 512-sample
# Hann window (32 ms at 16 kHz), hop 128 (8 ms), centred frames, amplitude_to_db of the power.
SOURCE_PRESET = {
    "sample_rate": 16000,
    "window_ms": 32.0,
    "hop_ms": 8.0,
    "bins": 257,
    "fft_size": 512,
    "window": "hann",
    "scale": "db",
}
SILENCE_RMS = 1e-4  # below this a whole file is silence (16-bit quantisation noise ~3e-5)
LOG_FLOOR = 1e-10


@dataclass
class ExtractConfig:
    """How to turn audio into features.

    Args:
        sample_rate: target rate; other rates are resampled (soxr, high quality).
        resample: when False, a file at another rate is an error.
        window_ms / hop_ms: STFT frame length and hop (25 ms / 10 ms as the source's LSPEC).
        bins: frequency bins kept (FFT size 2 x bins, the Nyquist bin dropped).
        long_frames / short_frames: a context window is long x short frames (10 x 10 = 1 s).
        step: frames between the starts of consecutive windows (default: half a window).
        categories: category names in id order (integers in the sheet are taken as ids).
        workers: processes reading and transforming files.
        scale: ``ln`` (natural log of the power over a Hamming-windowed STFT, scaled by the
            window's sum) or ``db`` (as the source extractor: ``librosa.amplitude_to_db`` of
            the power, i.e. ``20 log10(max(|X|^2, 1e-5))`` floored 80 dB below the file's
            peak, over a centred, zero-padded, unscaled STFT with ``window``).
        window: the STFT window of the ``db`` scale (``hann`` as librosa).
        fft_size: FFT points of the ``db`` scale (``bins`` may be up to ``fft_size / 2 + 1``).
        label_columns: the label matrix's columns, in order (a subset of
            :data:`LABEL_COLUMNS`), e.g. the layout a corpus prepared with the source tools
            used, so configs that number their columns keep working.
    """

    sample_rate: int = 16000
    resample: bool = True
    window_ms: float = 25.0
    hop_ms: float = 10.0
    bins: int = 256
    long_frames: int = 10
    short_frames: int = 10
    step: int | None = None
    categories: tuple[str, ...] = CATEGORIES
    workers: int = field(default_factory=lambda: max(1, (os.cpu_count() or 2) - 1))
    scale: str = "ln"
    window: str = "hann"
    fft_size: int = 512
    label_columns: tuple[str, ...] = LABEL_COLUMNS

    def __post_init__(self) -> None:
        for name in ("sample_rate", "bins", "long_frames", "short_frames", "workers"):
            if getattr(self, name) < 1:
                flag, value = f"--{name.replace('_', '-')}", getattr(self, name)
                raise ConfigError(flag, f"must be >= 1, got {value}")
        if not 0 < self.hop_ms <= self.window_ms:
            raise ConfigError("--hop-ms", f"need 0 < hop_ms <= window_ms, got {self.hop_ms}")
        if self.step is not None and self.step < 1:
            raise ConfigError("--step", f"must be >= 1, got {self.step}")
        unknown = [c for c in self.label_columns if c not in LABEL_COLUMNS]
        if unknown or not self.label_columns:
            raise ConfigError(
                "--label-columns", f"expected names from {LABEL_COLUMNS}, got {unknown or '[]'}"
            )
        if len(set(self.label_columns)) != len(self.label_columns):
            raise ConfigError("--label-columns", f"a column is named twice: {self.label_columns}")
        if self.scale not in SCALES:
            raise ConfigError("--scale", f"expected one of {SCALES}, got {self.scale!r}")
        if self.scale == "db" and self.bins > self.fft_size // 2 + 1:
            limit = self.fft_size // 2 + 1
            raise ConfigError("--bins", f"at most {limit} with a {self.fft_size}-point FFT")

    def parameters(self) -> dict:
        """What decides the features (not ``workers``): saved in the h5 and with models, so
        ``launch.py predict`` extracts new audio the same way."""
        values = dataclasses.asdict(self)
        del values["workers"]
        values["categories"] = list(self.categories)
        values["label_columns"] = list(self.label_columns)
        return values

    @classmethod
    def from_parameters(cls, values: dict, workers: int | None = None) -> ExtractConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        chosen = {k: v for k, v in values.items() if k in known}
        chosen["categories"] = tuple(chosen.get("categories", CATEGORIES))
        chosen["label_columns"] = tuple(chosen.get("label_columns", LABEL_COLUMNS))
        return cls(**chosen, **({"workers": workers} if workers else {}))

    @property
    def frames(self) -> int:
        return self.long_frames * self.short_frames

    @property
    def window_step(self) -> int:
        return self.step or max(1, self.frames // 2)


@dataclass
class Utterance:
    """One row of the label sheet."""

    row: int
    path: Path
    speaker: str
    labels: dict[str, float]


def read_sheet(wav_dir: Path, sheet: Path, config: ExtractConfig) -> list[Utterance]:
    """Parse and check the label sheet; every WAV must exist."""
    try:
        with open(sheet, newline="") as handle:
            reader = csv.DictReader(handle)
            rows, header = list(reader), reader.fieldnames or []
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(str(sheet), None, f"cannot read the label sheet ({exc})") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise DataError(str(sheet), None, f"missing column(s) {missing} (header: {list(header)})")
    if not rows:
        raise DataError(str(sheet), None, "no rows below the header")
    utterances = []
    for number, row in enumerate(rows, start=2):  # line numbers as an editor shows them
        where = f"{sheet}:{number}"
        path = wav_dir / (row.get("file") or "")
        if not row.get("file") or not path.is_file():
            raise DataError(where, "file", f"WAV not found: {path}")
        if not (row.get("speaker") or "").strip():
            raise DataError(where, "speaker", "empty speaker")
        labels = {c: _label(c, row.get(c), config, where) for c in OPTIONAL}
        utterances.append(Utterance(number - 2, path, row["speaker"].strip(), labels))
    return utterances


def _label(column: str, value: str | None, config: ExtractConfig, where: str) -> float:
    value = (value or "").strip()
    if not value:
        return -1.0
    if column == "category":
        if value.lower() in config.categories:
            return float(config.categories.index(value.lower()))
        if value.isdigit():
            return float(value)
        known = ", ".join(config.categories)
        raise DataError(where, column, f"unknown category {value!r} (known: {known}, or an id)")
    if column == "gender":
        if value.lower() in GENDERS:
            return float(GENDERS[value.lower()])
        raise DataError(where, column, f"unknown gender {value!r} (expected f/m, female/male)")
    try:
        return float(value)
    except ValueError:
        raise DataError(where, column, f"expected a number, got {value!r}") from None


def spectrogram(path: Path, config: ExtractConfig) -> np.ndarray:
    """Log-power spectrogram ``(frames, bins)`` of one WAV (mono, at ``sample_rate``)."""
    try:
        audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise DataError(str(path), None, f"unreadable audio ({exc})") from None
    audio = audio.mean(axis=1)
    if not len(audio):
        raise DataError(str(path), None, "empty audio (no samples)")
    if float(np.sqrt(np.mean(audio**2))) < SILENCE_RMS:
        raise DataError(str(path), None, "silent audio (RMS below 1e-4)")
    if rate != config.sample_rate:
        if not config.resample:
            expected = f"expected {config.sample_rate} Hz (resampling is off)"
            raise DataError(str(path), None, f"sample rate {rate} Hz, {expected}")
        audio = soxr.resample(audio, rate, config.sample_rate, quality="HQ")
    length = round(config.sample_rate * config.window_ms / 1000)
    hop = round(config.sample_rate * config.hop_ms / 1000)
    if config.scale == "db":
        return _decibel_spectrogram(audio, length, hop, config)
    _, _, stft = scipy.signal.stft(
        audio,
        window="hamming",
        nperseg=length,
        noverlap=length - hop,
        nfft=max(2 * config.bins, length),
        boundary=None,
        padded=False,
    )
    power = np.abs(stft[: config.bins].T) ** 2
    return np.log(power + LOG_FLOOR).astype(np.float32)


def _decibel_spectrogram(audio: np.ndarray, length: int, hop: int, config) -> np.ndarray:
    """librosa's ``amplitude_to_db(abs(stft(y, n_fft))**2)``, frames first."""
    audio = np.pad(audio, config.fft_size // 2)  # centred frames, zero padding
    if len(audio) < length:
        audio = np.pad(audio, (0, length - len(audio)))
    starts = hop * np.arange(1 + (len(audio) - length) // hop)
    frames = audio[starts[:, None] + np.arange(length)[None, :]]
    frames = frames * scipy.signal.get_window(config.window, length, fftbins=True)
    power = np.abs(np.fft.rfft(frames, n=config.fft_size)[:, : config.bins]) ** 2
    decibels = 20.0 * np.log10(np.maximum(power, 1e-5))
    return np.maximum(decibels, decibels.max() - 80.0).astype(np.float32)


def windows(frames: np.ndarray, config: ExtractConfig) -> np.ndarray:
    """Context windows ``(n, long, 1, short, bins)``; a clip shorter than one window is
    padded with the log floor (silence) to one window."""
    size = config.frames
    if len(frames) < size:
        silence = np.log(LOG_FLOOR) if config.scale == "ln" else float(frames.min())
        pad = np.full((size - len(frames), frames.shape[1]), silence, np.float32)
        frames = np.concatenate([frames, pad])
    starts = range(0, len(frames) - size + 1, config.window_step)
    stacked = np.stack([frames[s : s + size] for s in starts])
    return stacked.reshape(len(stacked), config.long_frames, 1, config.short_frames, -1)


def _features(args: tuple[Path, ExtractConfig]) -> np.ndarray:
    path, config = args
    return windows(spectrogram(path, config), config)


def extract(
    wav_dir: str | Path,
    sheet: str | Path,
    out: str | Path,
    config: ExtractConfig | None = None,
    progress: bool = True,
) -> dict:
    """Write ``out`` (h5: ``a_feat``, ``label``, ``start_indice``/``end_indice`` per speaker).

    The file is built as ``out.partial`` and renamed when complete. Returns a summary.

    Example:
        >>> extract("wavs", "labels.csv", "corpus.h5")  # doctest: +SKIP
    """
    config = config or ExtractConfig()
    wav_dir, sheet, out = Path(wav_dir), Path(sheet), Path(out)
    if not wav_dir.is_dir():
        raise DataError(str(wav_dir), None, "WAV folder not found")
    utterances = read_sheet(wav_dir, sheet, config)
    speakers = sorted({u.speaker for u in utterances})
    # rows grouped by speaker: each speaker is one contiguous fold
    ordered = sorted(utterances, key=lambda u: (speakers.index(u.speaker), u.row))
    partial = out.with_name(out.name + ".partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        h5 = h5py.File(partial, "w")
    except OSError as exc:
        raise ConfigError(str(out), f"cannot write ({exc.strerror or exc})") from None
    try:
        with h5:
            counts = _write(h5, ordered, speakers, config, progress)
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return {
        "out": str(out),
        "files": len(utterances),
        "speakers": len(speakers),
        "windows": int(sum(counts)),
        "shape": [config.long_frames, 1, config.short_frames, config.bins],
    }


def _write(
    h5, ordered: list[Utterance], speakers: list[str], config: ExtractConfig, progress: bool
) -> list[int]:
    shape = (config.long_frames, 1, config.short_frames, config.bins)
    features = h5.create_dataset(
        "a_feat", (0, *shape), np.float32, maxshape=(None, *shape), chunks=(64, *shape)
    )
    columns = config.label_columns
    labels = h5.create_dataset(
        "label", (0, len(columns)), np.float32, maxshape=(None, len(columns))
    )
    per_speaker = [0] * len(speakers)
    for utterance, block in zip(ordered, _parallel(ordered, config, progress), strict=True):
        start = features.shape[0]
        features.resize(start + len(block), axis=0)
        features[start:] = block
        speaker = speakers.index(utterance.speaker)
        values = {**utterance.labels, "speaker": speaker, "utterance": utterance.row}
        row = [values[column] for column in columns]
        labels.resize(start + len(block), axis=0)
        labels[start:] = np.tile(np.asarray(row, np.float32), (len(block), 1))
        per_speaker[speaker] += len(block)
    ends = np.cumsum(per_speaker)
    h5.create_dataset("start_indice", data=(ends - per_speaker).astype(np.int64))
    h5.create_dataset("end_indice", data=ends.astype(np.int64))
    kinds = dict(zip(LABEL_COLUMNS, column_kinds(ordered), strict=True))
    write_label_columns(labels, list(columns), [kinds[c] for c in columns])
    h5.attrs["speakers"] = ",".join(speakers)
    h5.attrs["categories"] = ",".join(config.categories)
    h5.attrs["extraction"] = json.dumps(config.parameters())
    return per_speaker


def column_kinds(utterances: list[Utterance]) -> list[str]:
    """What each label column holds: arousal / valence are class ids when every value the
    sheet gives is a whole number, else continuous values."""
    kinds = {
        "category": "class",
        "speaker": "id",
        "corpus": "id",
        "gender": "class",
        "utterance": "id",
    }
    for column in ("arousal", "valence"):
        values = [u.labels[column] for u in utterances]
        kinds[column] = "class" if all(float(v).is_integer() for v in values) else "continuous"
    return [kinds[c] for c in LABEL_COLUMNS]


def _parallel(ordered: list[Utterance], config: ExtractConfig, progress: bool) -> Iterator:
    """Features of each utterance, in order, computed ``workers`` at a time; a bounded number
    of files is in flight, so memory does not grow with the corpus."""
    from tqdm import tqdm

    jobs = [(u.path, config) for u in ordered]
    bar = tqdm(total=len(jobs), unit="file", desc="extract", disable=not progress)
    with ProcessPoolExecutor(config.workers) as pool:
        for start in range(0, len(jobs), 4 * config.workers):
            for block in pool.map(_features, jobs[start : start + 4 * config.workers]):
                bar.update()
                yield block
    bar.close()
