"""Training run of the SGAN: health signals every epoch, UAR of the class head."""

from __future__ import annotations

from pathlib import Path

from sermodels.config import RunConfig
from sermodels.data import Corpus, Split
from sermodels.errors import ConfigError
from sermodels.training.common import evaluate_task, scalars_of
from sermodels.training.gan import SGAN
from sermodels.training.loop import TrainingRun
from sermodels.training.tensorboard import image_grid, write_png


class SGANRun(TrainingRun):
    """SGAN on the first task of the corpus (as the source SGAN).

    Example:
        >>> result = SGANRun(config, corpus, Path("runs/one")).fit()  # doctest: +SKIP
    """

    def __init__(self, config: RunConfig, corpus: Corpus, out: Path | None = None) -> None:
        super().__init__(config, corpus, out)
        if self.task.is_regression and not config.sgan.unsupervised:
            raise ConfigError("data.tasks", "the SGAN's class head needs a classification task")
        self.gan = SGAN(config.sgan, corpus.input_shapes(), self.task.n_classes)
        labelled = corpus.train.labelled & (not config.sgan.unsupervised)
        self.rows = self.gan.training_rows(
            corpus.train.features, corpus.train.labels[:, self.task.column], labelled
        )
        self._real_sample = {k: v[:64] for k, v in corpus.train.features.items()}

    def train_one_epoch(self) -> dict:
        seed = self.config.train.seed * 100_003 + self.epoch
        signals = self.gan.train_epoch(self.rows, self.config.train.batch_size, seed=seed)
        signals["diversity"] = self.gan.diversity(self._real_sample)
        return signals

    def evaluate(self, split: Split, prefix: str) -> dict:
        probabilities = self.gan.predict_classes(split.features)
        result = {f"{prefix}_validity": self.gan.validity(split.features)}
        if probabilities is None:  # unsupervised: no class head, no UAR
            result.update({f"{prefix}_uar": None, f"{prefix}_score": None})
            return result
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
        if not self.gan.generators:
            return
        for modality, samples in self.gan.generate(4, seed=epoch).items():
            grid = image_grid(samples)
            write_png(self.out / "images" / f"{modality}_epoch{epoch:03d}.png", grid)
            self.log.images(epoch, f"generated/{modality}", grid)
