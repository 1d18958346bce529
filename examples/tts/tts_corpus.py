"""Synthesize a small labelled emotional speech set with espeak-ng, for `launch.py extract`.

Each speaker is an espeak-ng voice variant; each emotion is a prosody setting (pitch, speed,
amplitude) in the direction the SER literature describes (angry/happy: higher arousal,
faster and louder; sad: slower, lower and softer). Writes OUT/wav/*.wav and OUT/labels.csv
(file, speaker, category, arousal, valence, gender).

    python examples/tts/tts_corpus.py OUT [--speakers 4] [--sentences 3]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
from pathlib import Path

# name: (pitch 0-99, words per minute, amplitude 0-200, arousal class, valence class)
EMOTIONS = {
    "neutral": (50, 160, 100, 1, 1),
    "happy": (80, 190, 130, 2, 2),
    "sad": (25, 115, 70, 0, 0),
    "angry": (45, 210, 190, 2, 0),
}
VOICES = [
    ("en+m1", "m"),
    ("en+f2", "f"),
    ("en+m3", "m"),
    ("en+f4", "f"),
    ("en+m5", "m"),
    ("en+f1", "f"),
    ("en+m2", "m"),
    ("en+f3", "f"),
]
SENTENCES = [
    "The train leaves at seven in the morning.",
    "I put the keys on the kitchen table.",
    "We will talk about it again tomorrow.",
    "She opened the window and looked outside.",
    "There are twelve chairs in the meeting room.",
]


def synthesize(out: Path, speakers: int = 4, sentences: int = 3) -> tuple[Path, Path]:
    """Write the WAVs and the label sheet; returns ``(wav_dir, labels_csv)``."""
    engine = shutil.which("espeak-ng")
    if engine is None:
        raise SystemExit("error: espeak-ng not found (Debian: apt-get install espeak-ng)")
    if not 1 <= speakers <= len(VOICES) or not 1 <= sentences <= len(SENTENCES):
        raise SystemExit(f"error: need 1-{len(VOICES)} speakers and 1-{len(SENTENCES)} sentences")
    wav_dir = out / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for speaker, (voice, gender) in enumerate(VOICES[:speakers]):
        for emotion, (pitch, speed, amplitude, arousal, valence) in EMOTIONS.items():
            for number, text in enumerate(SENTENCES[:sentences]):
                name = f"spk{speaker}_{emotion}_{number}.wav"
                subprocess.run(
                    [
                        engine,
                        "-v",
                        voice,
                        "-p",
                        str(pitch),
                        "-s",
                        str(speed),
                        "-a",
                        str(amplitude),
                        "-w",
                        str(wav_dir / name),
                        text,
                    ],
                    check=True,
                    capture_output=True,
                )
                rows.append([name, f"spk{speaker}", emotion, arousal, valence, gender])
    sheet = out / "labels.csv"
    with open(sheet, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "speaker", "category", "arousal", "valence", "gender"])
        writer.writerows(rows)
    return wav_dir, sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--speakers", type=int, default=4)
    parser.add_argument("--sentences", type=int, default=3)
    args = parser.parse_args()
    wav_dir, sheet = synthesize(args.out, args.speakers, args.sentences)
    print(f"wrote {len(list(wav_dir.glob('*.wav')))} WAVs in {wav_dir} and {sheet}")


if __name__ == "__main__":
    main()
