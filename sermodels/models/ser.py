"""SER architectures: frame-level blocks over each long frame, then utterance-level blocks
over the sequence, then one head per task (as the source trainer's flags, freely combined).

Input: ``(time, context, dims)``: long frames of a 2D layout, or time steps of a 3D layout.
"""

from __future__ import annotations

import keras
from keras import layers, regularizers

from sermodels.config import SERConfig
from sermodels.errors import ConfigError
from sermodels.specs import TaskSpec

FRAME_BLOCKS = ("dnn", "highway", "residual", "lstm", "conv", "r_conv", "conv_hw", "conv_3d")
SEQUENCE_BLOCKS = ("lstm", "g_lstm", "attention", "g_pool")
VECTOR_BLOCKS = ("dnn", "highway", "residual")


class _Builder:
    """Holds the running tensor and whether it is a grid (time, rows, cols, ch) per frame,
    a sequence (time, features) or a vector (features)."""

    def __init__(self, config: SERConfig, x) -> None:
        self.c, self.x, self.kind, self.count = config, x, "grid", 0
        self.l2 = regularizers.L2(config.l2) if config.l2 else None

    def name(self, what: str) -> str:
        self.count += 1
        return f"{what}{self.count}"

    def dense(self, units, activation="relu", name="dense", **kwargs):
        return layers.Dense(units, activation=activation, kernel_regularizer=self.l2,
                            name=self.name(name), **kwargs)  # fmt: skip

    def to_sequence(self) -> None:
        if self.kind == "grid":
            self.x = layers.TimeDistributed(layers.Flatten(), name=self.name("flatten"))(self.x)
            self.kind = "sequence"

    def conv(self, residual=False, highway=False) -> None:
        if self.kind != "grid":
            raise ConfigError("ser.frame", "conv blocks must come before dnn/lstm frame blocks")
        c = self.c
        for _ in range(c.conv_depth):
            inputs = self.x
            y = self._td(
                layers.Conv2D(
                    c.n_filter,
                    (c.n_row, c.n_col),
                    padding="same",
                    activation="relu",
                    kernel_regularizer=self.l2,
                ),
                "conv",
            )
            if residual or highway:
                skip = self._td(layers.Conv2D(c.n_filter, 1, padding="same"), "proj", inputs)
                if residual:
                    y = layers.Add(name=self.name("add"))([skip, y])
                else:
                    gate = self._td(layers.Conv2D(c.n_filter, (c.n_row, c.n_col),
                                                  padding="same", activation="sigmoid"),
                                    "gate", inputs)  # fmt: skip
                    y = _highway_mix(y, skip, gate, self.name("highway"))
            self.x = y
        self._pool(layers.MaxPooling2D((c.pool_r, c.pool_c), padding="same"), td=True)

    def conv_3d(self) -> None:
        c = self.c
        for _ in range(c.conv_depth):
            self.x = layers.Conv3D(c.n_filter, (c.n_time, c.n_row, c.n_col), padding="same",
                                   activation="relu", kernel_regularizer=self.l2,
                                   name=self.name("conv3d"))(self.x)  # fmt: skip
        self._pool(layers.MaxPooling3D((1, c.pool_r, c.pool_c), padding="same"), td=False)

    def _td(self, layer, name, inputs=None):
        return layers.TimeDistributed(layer, name=self.name(name))(
            self.x if inputs is None else inputs
        )

    def _pool(self, layer, td: bool) -> None:
        if self.c.pool_r > 1 or self.c.pool_c > 1:
            self.x = (layers.TimeDistributed(layer, name=self.name("pool")) if td else layer)(
                self.x
            )

    def stack(self, kind: str, depth: int, per_frame: bool) -> None:
        """dnn / highway / residual dense layers, per frame or on the utterance vector."""
        wrap = (lambda layer: layers.TimeDistributed(layer)) if per_frame else (lambda layer: layer)
        for _ in range(depth):
            y = wrap(self.dense(self.c.n_node, name=kind))(self.x)
            if kind == "highway" or kind == "residual":
                skip = self.x
                if skip.shape[-1] != self.c.n_node:
                    skip = wrap(self.dense(self.c.n_node, activation=None, name="proj"))(skip)
                if kind == "residual":
                    y = layers.Add(name=self.name("add"))([skip, y])
                else:
                    gate = wrap(
                        self.dense(
                            self.c.n_node,
                            "sigmoid",
                            name="gate",
                            bias_initializer=keras.initializers.Constant(-1.0),
                        )
                    )(
                        self.x
                    )  # negative gate bias carries the input at first (Srivastava et al. 2015)
                    y = _highway_mix(y, skip, gate, self.name("highway"))
            self.x = layers.Dropout(self.c.dropout, name=self.name("dropout"))(y)


def _highway_mix(transformed, carried, gate, name):
    """gate * transformed + (1 - gate) * carried, from plain layers so models reload safely."""
    difference = layers.Subtract(name=f"{name}_diff")([transformed, carried])
    gated = layers.Multiply(name=f"{name}_gated")([gate, difference])
    return layers.Add(name=name)([carried, gated])


def build_ser_model(config: SERConfig, input_shape: tuple, tasks: list[TaskSpec]) -> keras.Model:
    """Build the model for ``(time, context, dims)`` inputs with one output per task.

    Example:
        >>> model = build_ser_model(SERConfig(frame=["conv"], utterance=["lstm", "dnn"]),
        ...                         (10, 10, 64), parse_tasks("category:4:2"))  # doctest: +SKIP
    """
    _check_blocks(config)
    inputs = keras.Input(input_shape, name="features")
    b = _Builder(config, layers.Reshape((*input_shape, 1), name="channel")(inputs))
    for block in config.frame:
        _frame_block(b, block)
    b.to_sequence()
    sequence_blocks = [u for u in config.utterance if u in SEQUENCE_BLOCKS]
    for index, block in enumerate(sequence_blocks):
        last = index == len(sequence_blocks) - 1
        _sequence_block(b, block, last)
    if not sequence_blocks:
        b.x = layers.GlobalAveragePooling1D(name="g_pool")(b.x)
    for block in (u for u in config.utterance if u in VECTOR_BLOCKS):
        b.stack(block, config.dnn_depth, per_frame=False)
    outputs = [
        layers.Dense(t.n_classes, activation=None if t.is_regression else "softmax", name=t.name)(
            b.x
        )
        for t in tasks
    ]
    return keras.Model(inputs, outputs, name="ser")


def _frame_block(b: _Builder, block: str) -> None:
    if block in ("conv", "r_conv", "conv_hw"):
        b.conv(residual=block == "r_conv", highway=block == "conv_hw")
    elif block == "conv_3d":
        if b.kind != "grid":
            raise ConfigError("ser.frame", "conv_3d must come before dnn/lstm frame blocks")
        b.conv_3d()
    elif block == "lstm":
        if b.kind == "grid":  # an LSTM over the short frames of each long frame
            shape = b.x.shape
            b.x = layers.Reshape((shape[1], shape[2], shape[3] * shape[4]), name=b.name("rows"))(
                b.x
            )
        b.x = layers.TimeDistributed(layers.LSTM(b.c.cell), name=b.name("f_lstm"))(b.x)
        b.kind = "sequence"
    else:
        b.to_sequence()
        b.stack(block, b.c.f_dnn_depth, per_frame=True)


def _sequence_block(b: _Builder, block: str, last: bool) -> None:
    if block == "lstm":
        b.x = layers.LSTM(b.c.cell, return_sequences=not last, name=b.name("u_lstm"))(b.x)
    elif block == "g_lstm":
        b.x = layers.LSTM(b.c.cell, return_sequences=True, name=b.name("g_lstm"))(b.x)
        if last:
            b.x = layers.GlobalAveragePooling1D(name=b.name("g_pool"))(b.x)
    elif block == "attention":
        scores = layers.Dense(1, activation="tanh", name=b.name("attention_score"))(b.x)
        weights = layers.Softmax(axis=1, name=b.name("attention_weights"))(scores)
        b.x = layers.Dot(axes=1, name=b.name("attention_pool"))([weights, b.x])
        b.x = layers.Flatten(name=b.name("attention_out"))(b.x)
        if not last:
            raise ConfigError("ser.utterance", "attention pools the sequence: put it last")
    else:  # g_pool
        b.x = layers.GlobalAveragePooling1D(name=b.name("g_pool"))(b.x)
        if not last:
            raise ConfigError("ser.utterance", "g_pool pools the sequence: put it last")


def _check_blocks(config: SERConfig) -> None:
    for block in config.frame:
        if block not in FRAME_BLOCKS:
            raise ConfigError("ser.frame", f"unknown block {block!r}; expected {FRAME_BLOCKS}")
    seen_vector = False
    for block in config.utterance:
        if block not in SEQUENCE_BLOCKS + VECTOR_BLOCKS:
            raise ConfigError(
                "ser.utterance",
                f"unknown block {block!r}; expected {SEQUENCE_BLOCKS + VECTOR_BLOCKS}",
            )
        if block in SEQUENCE_BLOCKS and seen_vector:
            raise ConfigError("ser.utterance", f"{block!r} must come before dnn/highway/residual")
        seen_vector |= block in VECTOR_BLOCKS
    for name in ("n_node", "cell", "n_filter", "n_row", "n_col", "n_time", "pool_r", "pool_c"):
        if getattr(config, name) < 1:
            raise ConfigError(f"ser.{name}", f"must be >= 1, got {getattr(config, name)}")
    if not 0 <= config.dropout < 1 or config.l2 < 0 or config.lr <= 0:
        raise ConfigError("ser.dropout", "need 0 <= dropout < 1, l2 >= 0 and lr > 0")
