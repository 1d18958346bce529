"""Training run of the SGAN: health signals every epoch, UAR of the class head on the
validation (and, as the source, the training) rows, generated samples with D's verdict."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from sermodels.config import RunConfig
from sermodels.data import Corpus, Split
from sermodels.errors import ConfigError
from sermodels.training.common import evaluate_task, scalars_of
from sermodels.training.diversity import DifferentBins, distance_ratio, real_sample
from sermodels.training.gan import SGAN
from sermodels.training.loop import TrainingRun
from sermodels.training.tensorboard import annotated_grid, write_png

PAIRWISE_SAMPLES = 64  # generated samples and real rows of the distance ratio
NDB_REAL_ROWS = 2000  # real rows the bins are fitted on (all, in a smaller corpus)
ROWS_PER_BIN = 20  # real rows per bin, at least (the test needs counts to work with)
MAX_BINS = 100  # as Richardson & Weiss


class SGANRun(TrainingRun):
    """SGAN on the first task of the corpus (as the source SGAN).

    Example:
        >>> result = SGANRun(config, corpus, Path("runs/one")).fit()  # doctest: +SKIP
    """

    evaluates_train = True  # the source SGAN evaluated the whole training set each epoch

    def __init__(self, config: RunConfig, corpus: Corpus, out: Path | None = None) -> None:
        super().__init__(config, corpus, out)
        if self.task.is_regression and not config.sgan.unsupervised:
            raise ConfigError("data.tasks", "the SGAN's class head needs a classification task")
        if config.train.stop_on != "score":
            raise ConfigError("train.stop_on", "the SGAN stops on its validation score")
        if corpus.adopt is not None:
            raise ConfigError("data.adopt_idx", "adaptation folds are for SER models")
        self.gan = SGAN(config.sgan, corpus.input_shapes(), self.task.n_classes)
        train = corpus.train
        labelled = train.labelled & (not config.sgan.unsupervised)
        labels = train.labels[:, self.task.column]
        if train.resident:
            self.rows = self.gan.training_rows(train.features, labels, labelled)
        else:
            self.rows = self.gan.streamed_rows(train, labels, labelled)
        self._diversity_rows = real_sample(train, config.train.seed, PAIRWISE_SAMPLES)
        self._bins = self._fit_bins(train, config.train.seed)

    def _fit_bins(self, train, seed: int) -> dict:
        """Per modality, the k-means bins of the different-bins test, fitted once on up to
        ``NDB_REAL_ROWS`` real rows; none when ``sgan.ndb_samples`` is 0 (the default: it costs
        a quarter of an epoch on a 320-row corpus, and no verdict reads it) or too few rows
        fill two bins."""
        if not self.gan.generators or not self.config.sgan.ndb_samples:
            return {}
        fitted_on = real_sample(train, seed, NDB_REAL_ROWS)
        bins = min(MAX_BINS, len(next(iter(fitted_on.values()))) // ROWS_PER_BIN)
        if bins < 2:
            return {}
        return {m: DifferentBins(fitted_on[m], bins, seed=seed) for m in self.gan.modalities}

    def train_one_epoch(self) -> dict:
        seed = self.config.train.seed * 100_003 + self.epoch
        train = self.config.train
        started = time.perf_counter()
        signals = self.gan.train_epoch(
            self.rows,
            train.batch_size,
            seed=seed,
            on_batch=self._progress,
            every=train.check_batch_interval,
            steps=train.steps_per_epoch,
        )
        signals["train_seconds"] = time.perf_counter() - started  # the steps alone: samples/s
        signals.update(self.diversity())
        return signals

    def diversity(self) -> dict:
        """How varied G's samples are, averaged over modalities: ``diversity`` (their mean
        pairwise distance over that of real rows) and, with ``sgan.ndb_samples``, ``ndb``
        (the share of statistically different bins), from one fixed draw of noise;
        ``diversity_seconds`` is their cost."""
        if not self.gan.generators:
            return {"diversity": float("nan")}
        started = time.perf_counter()
        fakes = self.gan.generate(max(PAIRWISE_SAMPLES, self.config.sgan.ndb_samples))
        modalities = self.gan.modalities
        ratios = [
            distance_ratio(fakes[m][:PAIRWISE_SAMPLES], self._diversity_rows[m]) for m in modalities
        ]
        signals = {"diversity": float(np.mean(ratios))}
        if self._bins:
            signals["ndb"] = float(np.mean([self._bins[m].share(fakes[m]) for m in modalities]))
        signals["diversity_seconds"] = time.perf_counter() - started
        return signals

    def _progress(self, done: int, total: int, means: dict) -> None:
        """The source SGAN's progress line every ``check_batch_interval`` steps."""
        parts = "  ".join(
            f"{k}={means[k]:.3f}"
            for k in (
                "d_loss",
                "d_loss_real",
                "d_loss_fake",
                "d_acc_real",
                "d_acc_fake",
                "class_acc",
                "g_loss",
            )
        )
        print(
            f"epoch {self.epoch} batch {done}/{total} ({100 * done / total:.0f}%)  {parts}",
            flush=True,
        )

    def evaluate(self, split: Split, prefix: str) -> dict:
        outputs = self.gan.predict_split(split)
        result = {f"{prefix}_validity": float(np.mean(outputs[0])) if len(split) else None}
        if self.config.sgan.unsupervised:  # no class head, no UAR
            result.update({f"{prefix}_uar": None, f"{prefix}_score": None})
            return result
        probabilities = outputs[1][:, : self.task.n_classes]
        report = evaluate_task(self.task, probabilities, split.labels)
        result.update(scalars_of(prefix, report))
        if prefix == "test":
            result["test_confusion"] = report["confusion"]
        return result

    def get_weights(self) -> list:
        return self.gan.weights()

    def set_weights(self, weights: list) -> None:
        self.gan.set_weights(weights)

    def optimizers(self) -> list[tuple]:
        pairs = [(self.gan.d_optimizer, self.gan.discriminator.trainable_variables)]
        g_vars = self.gan.g_variables
        return pairs + [(self.gan.g_optimizer, g_vars)] if g_vars else pairs

    def save_models(self, directory: Path) -> list[str]:
        directory.mkdir(parents=True, exist_ok=True)
        return self.gan.save(directory)

    def save_images(self, epoch: int) -> None:
        """A 2 x 2 grid of generated samples per modality, each captioned with what D makes
        of it (its validity, and its most likely class), as the source logged them."""
        if not self.gan.generators:
            return
        samples = self.gan.generate(4, seed=epoch)
        outputs = self.gan.predict(samples)
        captions = []
        for index in range(4):
            caption = f"real {outputs[0][index, 0]:.2f}"
            if not self.config.sgan.unsupervised:
                classes = outputs[1][index]
                best = int(np.argmax(classes))
                name = "fake" if best == self.task.n_classes else self.class_names[best]
                caption += f"\n{name} {classes[best]:.2f}"
            captions.append(caption)
        for modality, images in samples.items():
            grid = annotated_grid(images, captions, title=f"{modality}, epoch {epoch}")
            write_png(self.out / "images" / f"{modality}_epoch{epoch:03d}.png", grid)
            self.log.images(epoch, f"generated/{modality}", grid)
