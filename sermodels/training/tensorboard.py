"""TensorBoard event files for a run (scalars, images, text, HParams) through tensorboardX,
so no backend's own summary ops are needed: a JAX run writes them without TensorFlow."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image


class TensorBoardLog:
    """Scalars, images, text and HParams of one run in ``directory`` (no-op when ``None``).

    Example:
        >>> log = TensorBoardLog(Path("runs/one/tb"))  # doctest: +SKIP
        >>> log.scalars(1, {"d_loss": 0.7})  # doctest: +SKIP
    """

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._writer = None
        self._closed = False

    @property
    def writer(self):
        """The event file writer, opened at the first write (a run that fails before it
        logs anything leaves no event file and no writer thread behind)."""
        if self._writer is None and self.directory is not None and not self._closed:
            from tensorboardX import SummaryWriter

            self._writer = SummaryWriter(str(self.directory), flush_secs=30)
        return self._writer

    def scalars(self, step: int, values: dict) -> None:
        if not self.writer:
            return
        for name, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if math.isfinite(value):
                    self.writer.add_scalar(name, value, step)

    def images(self, step: int, name: str, image: np.ndarray) -> None:
        """An ``(H, W)`` grey or ``(H, W, 3)`` colour image in [0, 1]."""
        if self.writer:
            layout = "HW" if image.ndim == 2 else "HWC"
            self.writer.add_image(name, image, step, dataformats=layout)

    def text(self, step: int, name: str, text: str) -> None:
        if self.writer:
            self.writer.add_text(name, text, step)

    def hparams(self, params: dict, metrics: dict) -> None:
        """The HParams dashboard's row for this run: its parameters and final metrics."""
        if not self.writer:
            return
        from tensorboardX.summary import hparams

        plain = {k: v for k, v in params.items() if isinstance(v, (bool, int, float, str))}
        finite = {k: v for k, v in metrics.items() if math.isfinite(v)}
        for summary in hparams(plain, finite):  # experiment, session start, session end
            self.writer.file_writer.add_summary(summary)
        for name, value in finite.items():
            self.writer.add_scalar(name, value)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
        self._writer = None
        self._closed = True


def image_grid(samples: np.ndarray, columns: int = 2) -> np.ndarray:
    """Tile ``(n, rows, cols, 1)`` samples in [-1, 1] into one [0, 1] image. Rows of a
    spectrogram are time, so each tile is turned to put frequency on the vertical axis."""
    tiles = [np.rot90(s[:, :, 0]) for s in samples]
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i : i + columns], axis=1) for i in range(0, len(tiles), columns)]
    return np.clip((np.concatenate(rows, axis=0) + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)


def annotated_grid(
    samples: np.ndarray, captions: list[str], title: str, columns: int = 2
) -> np.ndarray:
    """Tiles of ``(n, rows, cols, 1)`` samples in [-1, 1], each under its caption, as one RGB
    image in [0, 1] (spectrogram tiles turned to put frequency on the vertical axis)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    rows = -(-len(samples) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.4 * rows), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(samples):
            ax.imshow(np.rot90(samples[index, :, :, 0]), cmap="magma", vmin=-1, vmax=1)
            ax.set_title(captions[index], fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].astype(np.float32) / 255.0
    plt.close(fig)
    return pixels


def write_png(path: Path, image: np.ndarray) -> None:
    """Write a [0, 1] grey or colour image as an 8-bit PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    Image.fromarray(pixels).save(path)
