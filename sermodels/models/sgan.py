"""Per-modality generator and discriminator stacks of the SGAN, as in the source SGAN."""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from sermodels.config import SGANConfig
from sermodels.errors import ConfigError

BN_MOMENTUM = 0.8  # the source SGAN's value (Keras-GAN heritage)


@dataclass(frozen=True)
class ModalityShape:
    """Architecture of one modality's G and D, with one entry per layer."""

    name: str
    rows: int
    cols: int
    kernels_G: list[int]
    sizes_G: list[tuple[int, int]]
    kernels_D: list[int]
    sizes_D: list[tuple[int, int]]
    pools_D: list[tuple[int, int]]


def modality_shapes(config: SGANConfig, input_shapes: dict[str, tuple]) -> list[ModalityShape]:
    """Resolve per-modality, per-layer settings (scalars, lists, or the source's
    ``"2,4,6;2,4,6"`` strings) into one :class:`ModalityShape` per feature key."""
    names = list(input_shapes)
    n = len(names)
    depth_G = _per_modality(config.depth_G, n, "sgan.depth_G")
    depth_D = _per_modality(config.depth_D, n, "sgan.depth_D")
    shapes = []
    for i, name in enumerate(names):
        rows, cols = input_shapes[name][:2]
        g, d = depth_G[i], depth_D[i]
        if g < 2 or d < 1:
            raise ConfigError("sgan.depth_G", f"{name}: need depth_G >= 2 and depth_D >= 1")
        shapes.append(
            ModalityShape(
                name=name,
                rows=rows,
                cols=cols,
                kernels_G=_per_layer(config.n_kernels_G, n, i, g, "sgan.n_kernels_G"),
                sizes_G=_pairs(config.cnn_n_row_G, config.cnn_n_col_G, n, i, g, "cnn_n_row_G"),
                kernels_D=_per_layer(config.n_kernels_D, n, i, d, "sgan.n_kernels_D"),
                sizes_D=_pairs(config.cnn_n_row_D, config.cnn_n_col_D, n, i, d, "cnn_n_row_D"),
                pools_D=_pairs(config.pool_n_row_D, config.pool_n_col_D, n, i, d, "pool_n_row_D"),
            )
        )
    return shapes


def _split_source_string(value):
    if isinstance(value, str):
        return [[int(x) for x in part.split(",")] for part in value.split(";")]
    return value


def _per_modality(value, n, where) -> list[int]:
    value = _split_source_string(value)
    values = value if isinstance(value, list) else [value]
    values = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in values]
    if len(values) == 1:
        values = values * n
    if len(values) != n or not all(isinstance(v, int) for v in values):
        raise ConfigError(where, f"expected one integer or one per modality ({n}), got {value!r}")
    return values


def _per_layer(value, n, index, depth, where) -> list[int]:
    value = _split_source_string(value)
    if isinstance(value, int):
        return [value] * depth
    if not isinstance(value, list) or not value:
        raise ConfigError(where, f"expected an integer or a list per layer, got {value!r}")
    if isinstance(value[0], list):
        if len(value) != n:
            raise ConfigError(where, f"expected one list per modality ({n}), got {len(value)}")
        value = value[index]
    if len(value) != depth:
        raise ConfigError(where, f"expected {depth} values (one per layer), got {value!r}")
    return [int(v) for v in value]


def _pairs(rows, cols, n, index, depth, name) -> list[tuple[int, int]]:
    col_name = name.replace("row", "col")
    return list(
        zip(
            _per_layer(rows, n, index, depth, f"sgan.{name}"),
            _per_layer(cols, n, index, depth, f"sgan.{col_name}"),
            strict=True,
        )
    )


def build_generator(shape: ModalityShape, latent_dim: int) -> keras.Model:
    """Dense from noise, then (UpSampling2D + Conv2D + ReLU + BN) blocks, last Conv2D to one
    tanh channel. ``depth_G - 2`` up-samplings double the seed grid up to rows x cols."""
    ups = len(shape.kernels_G) - 2
    factor = 2**ups
    if shape.rows % factor or shape.cols % factor:
        raise ConfigError(
            "sgan.depth_G",
            f"{shape.name}: {shape.rows}x{shape.cols} is not divisible by "
            f"2**(depth_G-2) = {factor}; change depth_G or r_nrow/r_ncol",
        )
    rows, cols, prefix = shape.rows // factor, shape.cols // factor, f"{shape.name}_g"
    noise = keras.Input((latent_dim,), name=f"{prefix}_noise")
    x = layers.Dense(shape.kernels_G[0] * rows * cols, activation="relu", name=f"{prefix}_dense")(
        noise
    )
    x = layers.Reshape((rows, cols, shape.kernels_G[0]), name=f"{prefix}_reshape")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{prefix}_bn0")(x)
    for i in range(1, len(shape.kernels_G) - 1):
        x = layers.UpSampling2D(name=f"{prefix}_up{i}")(x)
        x = layers.Conv2D(
            shape.kernels_G[i],
            shape.sizes_G[i],
            padding="same",
            activation="relu",
            name=f"{prefix}_conv{i}",
        )(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{prefix}_bn{i}")(x)
    # The last layer always has one channel, whatever n_kernels_G says (as the source).
    image = layers.Conv2D(
        1, shape.sizes_G[-1], padding="same", activation="tanh", name=f"{prefix}_out"
    )(x)
    return keras.Model(noise, image, name=f"{shape.name}_generator")


def build_discriminator_branch(shape: ModalityShape, dropout: float):
    """Conv (stride 2) + LeakyReLU + Dropout + BN + pooling, then ``depth_D`` such blocks
    with stride 1, flattened. Returns ``(input, features)``."""
    prefix = f"{shape.name}_d"
    image = keras.Input((shape.rows, shape.cols, 1), name=f"{shape.name}_input")
    x, rows, cols = image, shape.rows, shape.cols
    blocks = [(0, 2)] + [(i, 1) for i in range(len(shape.kernels_D))]
    for block, (layer, stride) in enumerate(blocks):
        x = layers.Conv2D(
            shape.kernels_D[layer],
            shape.sizes_D[layer],
            strides=stride,
            padding="same",
            name=f"{prefix}_conv{block}",
        )(x)
        x = layers.LeakyReLU(0.2, name=f"{prefix}_lrelu{block}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"{prefix}_dropout{block}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{prefix}_bn{block}")(x)
        rows, cols = -(-rows // stride), -(-cols // stride)
        pool = shape.pools_D[layer]
        if pool != (1, 1):
            rows, cols = rows // pool[0], cols // pool[1]
            if rows < 1 or cols < 1:
                raise ConfigError(
                    "sgan.pool_n_row_D",
                    f"{shape.name}: pooling shrinks the "
                    f"image below 1x1 at block {block}; use smaller pools",
                )
            x = layers.MaxPooling2D(pool, name=f"{prefix}_pool{block}")(x)
    return image, layers.Flatten(name=f"{prefix}_flatten")(x)


def build_discriminator(
    shapes: list[ModalityShape], config: SGANConfig, n_classes: int
) -> keras.Model:
    """Branches of all modalities concatenated, ``depth_a_v_D`` dense layers of ``n_node``,
    then a validity head (sigmoid) and, unless unsupervised, a K+1 softmax class head."""
    inputs, features = zip(
        *(build_discriminator_branch(s, config.dropout) for s in shapes), strict=True
    )
    x = features[0] if len(features) == 1 else layers.Concatenate(name="a_v_concat")(features)
    for i in range(config.depth_a_v_D):
        x = layers.Dense(config.n_node, activation="relu", name=f"d_dense{i}")(x)
    outputs = [layers.Dense(1, activation="sigmoid", name="validity")(x)]
    if not config.unsupervised:
        outputs.append(layers.Dense(n_classes + 1, activation="softmax", name="class")(x))
    return keras.Model(list(inputs), outputs, name="discriminator")
