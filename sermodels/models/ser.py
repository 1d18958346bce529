"""SER architectures, as the source trainer builds them from its flags: frame-level blocks,
then utterance-level blocks, then one head per task, combined freely.

Inputs (the sequence layout of :mod:`sermodels.data.preprocessing`):

* ``(time, context, dims)`` -- long frames of short-frame windows (the source's 2-D and 3-D
  inputs): ``conv`` / ``r_conv`` / ``conv_hw`` convolve each long frame's context x dims
  image, ``conv_3d`` / ``r_conv_3d`` / ``conv_hw_3d`` the whole time x context x dims volume;
* ``(time, dims)`` -- a sequence of feature vectors (the source's 1-D input, and a single
  vector ``(1, dims)``): ``conv`` / ``conv_hw`` are 1-D convolutions over time.

Per-layer sizes (``n_filter``, ``n_row``, ``n_col``, ``n_time``, ``pool_t``, ``pool_r``,
``pool_c``, ``l_filter``, ``pool``) are one value for every layer or one per layer, as the
source's comma lists. Where sersweep differs from the source on purpose, the README says so.
"""

from __future__ import annotations

import keras
from keras import layers, regularizers

from sermodels.config import SERConfig
from sermodels.errors import ConfigError
from sermodels.models.losses import CLASS_WEIGHT_FORMULAS
from sermodels.specs import TaskSpec, per_layer

CONV_BLOCKS = ("conv", "r_conv", "conv_hw")
VOLUME_BLOCKS = ("conv_3d", "r_conv_3d", "conv_hw_3d")
DENSE_BLOCKS = ("dnn", "highway", "residual")
FRAME_BLOCKS = CONV_BLOCKS + VOLUME_BLOCKS + DENSE_BLOCKS + ("lstm",)
SEQUENCE_BLOCKS = ("lstm", "g_lstm", "attention", "g_pool")
VECTOR_BLOCKS = DENSE_BLOCKS
FRAME_POOLING = ("flatten", "mean")
INPUT_NORMS = ("none", "batchnorm")


class _Builder:
    """Holds the running tensor and its kind: ``grid`` (time, context, dims, channels),
    ``sequence`` (time, features) or ``vector`` (features)."""

    def __init__(self, config: SERConfig, x, kind: str) -> None:
        self.c = config
        self.x = x
        self.kind = kind
        self.count = 0
        self.l2 = regularizers.L2(config.l2) if config.l2 else None

    def name(self, what: str) -> str:
        self.count += 1
        return f"{what}{self.count}"

    def size(self, key: str, layer: int) -> int:
        return per_layer(getattr(self.c, key), self.c.conv_depth, f"ser.{key}")[layer]

    def dense(self, units, activation="relu", name="dense", **kwargs):
        return layers.Dense(
            units, activation=activation, kernel_regularizer=self.l2, name=self.name(name), **kwargs
        )

    def lstm(self, sequences: bool, name: str):
        c = self.c
        return layers.LSTM(
            c.cell,
            return_sequences=sequences,
            kernel_regularizer=self.l2,
            dropout=c.dropout,
            recurrent_dropout=c.dropout,
            name=self.name(name),
        )

    def to_sequence(self) -> None:
        if self.kind == "grid":
            self.x = layers.TimeDistributed(layers.Flatten(), name=self.name("flatten"))(self.x)
            self.kind = "sequence"

    # ---- convolutions ---------------------------------------------------------------------
    def conv_stack(self, block: str) -> None:
        """``conv_depth`` convolution layers, each followed by its pooling (the source's
        ``--conv`` / ``--r_conv`` / ``--f_conv_highway`` and their 3-D and 1-D forms)."""
        volume = block in VOLUME_BLOCKS
        if self.kind == "vector" or (volume and self.kind != "grid"):
            raise ConfigError("ser.frame", f"{block} needs (time, context, dims) inputs")
        one_d = self.kind == "sequence"
        residual, highway = block.startswith("r_"), "_hw" in block
        # 1-D: valid convolutions as the source, "same" where a skip must match the input
        padding = "same" if (residual or highway or not one_d) else "valid"
        for layer in range(self.c.conv_depth):
            inputs = self.x
            y = self._apply(self._conv(layer, volume, one_d, padding, "relu", self.name("conv")))
            if highway:
                gate = self._conv(layer, volume, one_d, padding, "sigmoid", self.name("gate"))
                carry = self._matched(inputs, y, volume, one_d)
                y = highway_mix(y, carry, self._apply(gate, inputs), self.name("highway"))
            elif residual and layer > 0:  # the source: first layer plain, then x + F(x)
                y = layers.Add(name=self.name("add"))([self._matched(inputs, y, volume, one_d), y])
            self.x = y
            self._pool(layer, volume, one_d)

    def _conv(
        self, layer: int, volume: bool, one_d: bool, padding: str, activation: str, name: str
    ):
        c, filters = self.c, self.size("n_filter", layer)
        options = {
            "strides": c.stride,
            "padding": padding,
            "activation": activation,
            "kernel_regularizer": self.l2,
        }
        if one_d:  # the source's 1-D input: convolutions over time
            return layers.Conv1D(filters, self.size("l_filter", layer), **options, name=name)
        kernel = (self.size("n_row", layer), self.size("n_col", layer))
        if volume:
            kernel = (self.size("n_time", layer), *kernel)
            return layers.Conv3D(filters, kernel, **options, name=name)
        return layers.Conv2D(filters, kernel, **options, name=name)

    def _apply(self, layer, inputs=None):
        """A 2-D layer runs on each long frame (TimeDistributed, named ``td_NAME``); 3-D and
        1-D layers on the whole input."""
        inputs = self.x if inputs is None else inputs
        if self.kind == "grid" and not isinstance(layer, (layers.Conv3D, layers.MaxPooling3D)):
            return layers.TimeDistributed(layer, name=f"td_{layer.name}")(inputs)
        return layer(inputs)

    def _matched(self, inputs, target, volume: bool, one_d: bool):
        """``inputs`` as they are when shapes match ``target`` (an identity skip, as the
        source); through a 1x1 projection of the same stride only where they differ."""
        if tuple(inputs.shape) == tuple(target.shape):
            return inputs
        options = {"strides": self.c.stride, "padding": "same", "name": self.name("proj")}
        filters = target.shape[-1]
        if one_d:
            projection = layers.Conv1D(filters, 1, **options)
        elif volume:
            projection = layers.Conv3D(filters, 1, **options)
        else:
            projection = layers.Conv2D(filters, 1, **options)
        return self._apply(projection, inputs)

    def _pool(self, layer: int, volume: bool, one_d: bool) -> None:
        """Max pooling without padding (the source's Keras default): a pool larger than the
        map it pools is an error naming the key."""
        if one_d:
            sizes, keys = (self.size("pool", layer),), ("pool",)
        else:
            sizes = (self.size("pool_r", layer), self.size("pool_c", layer))
            keys = ("pool_r", "pool_c")
            if volume:
                sizes, keys = (self.size("pool_t", layer), *sizes), ("pool_t", *keys)
        if max(sizes) == 1:
            return
        spatial = self.x.shape[1:-1] if (volume or one_d) else self.x.shape[2:-1]
        for key, size, extent in zip(keys, sizes, spatial, strict=True):
            if size > extent:
                raise ConfigError(
                    f"ser.{key}",
                    f"layer {layer} pools {size} over a map of {extent}; use a smaller pool",
                )
        pool_class = {1: layers.MaxPooling1D, 2: layers.MaxPooling2D, 3: layers.MaxPooling3D}
        pool = pool_class[len(sizes)](sizes, name=self.name("pool"))
        self.x = pool(self.x) if (volume or one_d) else self._apply(pool)

    # ---- dense stacks -----------------------------------------------------------------------
    def dense_stack(self, kind: str, depth: int, per_frame: bool) -> None:
        """dnn / highway / residual layers of ``n_node``, per frame or on the utterance vector
        (highway and residual start with a Dense of ``n_node``, the source's ``dim`` layer)."""

        def wrap(layer):
            return layers.TimeDistributed(layer) if per_frame else layer

        if kind != "dnn":
            self.x = wrap(self.dense(self.c.n_node, name="dim"))(self.x)
        for _ in range(depth):
            y = wrap(self.dense(self.c.n_node, name=kind))(self.x)
            if kind == "highway":
                # negative gate bias: the block carries its input at first (Srivastava 2015)
                gate_bias = keras.initializers.Constant(-1.0)
                gate = wrap(
                    self.dense(self.c.n_node, "sigmoid", name="gate", bias_initializer=gate_bias)
                )(self.x)
                y = highway_mix(y, self.x, gate, self.name("highway"))
            if self.c.dropout:
                y = layers.Dropout(self.c.dropout, name=self.name("dropout"))(y)
            if kind == "residual":
                y = layers.Add(name=self.name("add"))([y, self.x])
            self.x = y


def highway_mix(transformed, carried, gate, name):
    """gate * transformed + (1 - gate) * carried, from plain layers so models reload safely."""
    difference = layers.Subtract(name=f"{name}_diff")([transformed, carried])
    gated = layers.Multiply(name=f"{name}_gated")([gate, difference])
    return layers.Add(name=name)([carried, gated])


def build_ser_model(
    config: SERConfig, input_shape: tuple, tasks: list[TaskSpec], frame_level: bool = False
) -> keras.Model:
    """Build the model for ``(time, context, dims)`` or ``(time, dims)`` inputs, with one
    output per task.

    Args:
        config: the ``ser`` section.
        input_shape: one row's shape in the sequence layout.
        tasks: the heads, in output order.
        frame_level: heads on every time step instead of the utterance (the source's
            frame-level model under ``--post_elm``); set by ``config.post_elm`` as well.

    Example:
        >>> model = build_ser_model(SERConfig(frame=["conv"], utterance=["lstm", "dnn"]),
        ...                         (10, 10, 64), parse_tasks("category:4:2"))  # doctest: +SKIP
    """
    check_ser_config(config, len(input_shape))
    frame_level = frame_level or config.post_elm
    inputs = keras.Input(input_shape, name="features")
    x = inputs
    if config.input_norm == "batchnorm":  # the source normalised inputs inside the model
        x = layers.TimeDistributed(layers.BatchNormalization(), name="input_norm")(x)
    grid = len(input_shape) == 3
    if grid:
        x = layers.Reshape((*input_shape, 1), name="channel")(x)
    b = _Builder(config, x, "grid" if grid else "sequence")
    for block in config.frame:
        _frame_block(b, block)
    b.to_sequence()
    if frame_level:
        _frame_level_tail(b, config)
    else:
        _utterance_tail(b, config)
    outputs = [_head(t, b.x, per_frame=frame_level) for t in tasks]
    return keras.Model(inputs, outputs, name="ser")


def _head(task: TaskSpec, x, per_frame: bool):
    activation = None if task.is_regression else "softmax"
    if per_frame:
        dense = layers.Dense(task.n_classes, activation=activation)
        return layers.TimeDistributed(dense, name=task.name)(x)
    return layers.Dense(task.n_classes, activation=activation, name=task.name)(x)


def _frame_block(b: _Builder, block: str) -> None:
    if block in CONV_BLOCKS + VOLUME_BLOCKS:
        b.conv_stack(block)
    elif block == "lstm":  # the source's --f_lstm: two LSTMs over the long frames
        b.to_sequence()
        b.x = b.lstm(True, "f_lstm")(b.x)
        b.x = b.lstm(_sequence_follows(b.c), "f_lstm")(b.x)
        b.kind = "sequence" if _sequence_follows(b.c) else "vector"
    else:
        b.to_sequence()
        b.dense_stack(block, b.c.f_dnn_depth, per_frame=True)


def _sequence_follows(config: SERConfig) -> bool:
    """Whether the frame LSTM must hand on a sequence (to a sequence block or frame heads)."""
    return config.post_elm or any(u in SEQUENCE_BLOCKS for u in config.utterance)


def _utterance_tail(b: _Builder, config: SERConfig) -> None:
    sequence = [u for u in config.utterance if u in SEQUENCE_BLOCKS]
    if b.kind == "sequence":
        if not sequence:  # frame blocks straight into the utterance vector
            if config.frame_pool == "flatten":  # as the source
                b.x = layers.Flatten(name=b.name("flatten"))(b.x)
            else:
                b.x = layers.GlobalAveragePooling1D(name=b.name("mean_pool"))(b.x)
        else:
            _sequence_blocks(b, sequence)
    for block in (u for u in config.utterance if u in VECTOR_BLOCKS):
        b.dense_stack(block, config.dnn_depth, per_frame=False)


def _sequence_blocks(b: _Builder, blocks: list[str]) -> None:
    """``lstm``: two stacked LSTMs (the source's --u_lstm); ``g_lstm``: two LSTMs, mean over
    time; ``g_pool`` with ``lstm``: the mean of the LSTM's input next to its last output (the
    source's --g_pool), alone: the mean over time; ``attention``: attention pooling."""
    sequence = b.x
    if "g_pool" in blocks:
        pooled = layers.GlobalAveragePooling1D(name=b.name("g_pool"))(sequence)
    if "lstm" in blocks:
        b.x = b.lstm(True, "u_lstm")(b.x)
        b.x = b.lstm(False, "u_lstm")(b.x)
        if "g_pool" in blocks:
            b.x = layers.Concatenate(name=b.name("g_pool_lstm"))([pooled, b.x])
    elif "g_lstm" in blocks:
        b.x = b.lstm(True, "g_lstm")(b.x)
        b.x = b.lstm(True, "g_lstm")(b.x)
        b.x = layers.GlobalAveragePooling1D(name=b.name("g_lstm_pool"))(b.x)
    elif "attention" in blocks:
        scores = layers.Dense(1, activation="tanh", name=b.name("attention_score"))(b.x)
        weights = layers.Softmax(axis=1, name=b.name("attention_weights"))(scores)
        b.x = layers.Dot(axes=1, name=b.name("attention_pool"))([weights, b.x])
        b.x = layers.Flatten(name=b.name("attention_out"))(b.x)
    else:  # g_pool alone
        b.x = pooled
    b.kind = "vector"


def _frame_level_tail(b: _Builder, config: SERConfig) -> None:
    """Under ``post_elm`` the model classifies every time step (the ELM then classifies the
    utterance from statistics of those outputs): sequence blocks keep the time axis."""
    for block in (u for u in config.utterance if u in VECTOR_BLOCKS):
        b.dense_stack(block, config.dnn_depth, per_frame=True)


def check_ser_config(config: SERConfig, input_rank: int) -> None:
    """Block names and orders, sizes, and what the input can feed; one-line errors."""
    for block in config.frame:
        if block not in FRAME_BLOCKS:
            raise ConfigError("ser.frame", f"unknown block {block!r}; expected {FRAME_BLOCKS}")
    seen_dense = False
    for block in config.frame:
        if block in CONV_BLOCKS + VOLUME_BLOCKS and seen_dense:
            raise ConfigError("ser.frame", "conv blocks must come before dnn/lstm frame blocks")
        seen_dense |= block in DENSE_BLOCKS + ("lstm",)
        if block in VOLUME_BLOCKS and input_rank != 3:
            raise ConfigError("ser.frame", f"{block} needs (time, context, dims) inputs")
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
    pooling = [u for u in config.utterance if u in ("lstm", "g_lstm", "attention")]
    if len(pooling) > 1:
        raise ConfigError("ser.utterance", f"choose one of lstm, g_lstm, attention, got {pooling}")
    for name in ("n_node", "cell", "conv_depth", "stride", "elm_hidden"):
        if getattr(config, name) < 1:
            raise ConfigError(f"ser.{name}", f"must be >= 1, got {getattr(config, name)}")
    for name in (
        "n_filter",
        "n_row",
        "n_col",
        "n_time",
        "pool_t",
        "pool_r",
        "pool_c",
        "l_filter",
        "pool",
    ):
        sizes = per_layer(getattr(config, name), config.conv_depth, f"ser.{name}")
        if min(sizes) < 1:
            raise ConfigError(f"ser.{name}", f"sizes must be >= 1, got {sizes}")
    if not 0 <= config.dropout < 1 or config.l2 < 0 or config.lr <= 0:
        raise ConfigError("ser.dropout", "need 0 <= dropout < 1, l2 >= 0 and lr > 0")
    if config.frame_pool not in FRAME_POOLING:
        raise ConfigError("ser.frame_pool", f"expected one of {FRAME_POOLING}")
    if config.input_norm not in INPUT_NORMS:
        raise ConfigError("ser.input_norm", f"expected one of {INPUT_NORMS}")
    if config.class_weight_formula not in CLASS_WEIGHT_FORMULAS:
        raise ConfigError("ser.class_weight_formula", f"expected one of {CLASS_WEIGHT_FORMULAS}")
    if config.clipvalue is not None and config.clipvalue <= 0:
        raise ConfigError("ser.clipvalue", f"must be > 0, got {config.clipvalue}")
