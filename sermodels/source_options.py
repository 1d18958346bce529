"""Every option of the source projects and what replaces it in sersweep: one list, from which
the README's table is generated (``python -m sermodels.source_options``), and which a test
checks against the config sections and the CLI, so docs and code cannot drift apart.

``project``: ``sgan`` for keras_sgan_ser's ``sgan_mer.py``, ``trainer`` for
SER_KERAS_TF_TRAINER's ``src/trainer.py``. ``ours``: a run-config key (``section.key``), a
``launch.py`` command or flag, or ``""`` where sersweep has no counterpart (``note`` says why).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceOption:
    project: str
    flag: str
    ours: str
    note: str = ""


# fmt: off
# (one option per line: the list reads as the table it generates)
OPTIONS = (
    # ---- shared: data, folds, training loop -------------------------------------------------
    SourceOption("both", "-dt", "data.path", "or `--data FILE`"),
    SourceOption("both", "-mt", "data.tasks", "columns by number or by name"),
    SourceOption("both", "-test_idx", "data.test_idx", "or `--test-idx`"),
    SourceOption("both", "-valid_idx", "data.valid_idx", "or `--valid-idx`; = test only with `data.valid_is_test`"),
    SourceOption("both", "-train_idx", "data.train_idx", "or `--train-idx`"),
    SourceOption("both", "-b", "train.batch_size"),
    SourceOption("both", "-e", "train.epochs"),
    SourceOption("both", "-p", "train.patience", "SGAN: score window of p + 1; trainer: with `train.stop_on: loss`"),
    SourceOption("both", "-sm", "train.save_models", "models go to `OUT/models`"),
    SourceOption("both", "-log", "", "every epoch's metrics go to `OUT/history.json` and TensorBoard"),
    # ---- keras_sgan_ser -----------------------------------------------------------------------
    SourceOption("sgan", "-mod", "data.features"),
    SourceOption("sgan", "-r_nrow", "data.r_nrow"),
    SourceOption("sgan", "-r_ncol", "data.r_ncol"),
    SourceOption("sgan", "-check_batch_interval", "train.check_batch_interval"),
    SourceOption("sgan", "-save_img_interval", "train.save_img_interval", "the source also evaluated only at this interval; sersweep every epoch"),
    SourceOption("sgan", "-save_img", "train.save_img_interval", "images go to `OUT/images` and TensorBoard"),
    SourceOption("sgan", "-task_weights", "sgan.task_weights"),
    SourceOption("sgan", "-d_lr", "sgan.d_lr"),
    SourceOption("sgan", "-g_lr", "sgan.g_lr"),
    SourceOption("sgan", "-depth_G", "sgan.depth_G"),
    SourceOption("sgan", "-depth_D", "sgan.depth_D"),
    SourceOption("sgan", "-depth_a_v_D", "sgan.depth_a_v_D"),
    SourceOption("sgan", "-n_node", "sgan.n_node"),
    SourceOption("sgan", "-drop", "sgan.dropout"),
    SourceOption("sgan", "-n_kernels_G", "sgan.n_kernels_G"),
    SourceOption("sgan", "-cnn_n_row_G", "sgan.cnn_n_row_G"),
    SourceOption("sgan", "-cnn_n_col_G", "sgan.cnn_n_col_G"),
    SourceOption("sgan", "-n_kernels_D", "sgan.n_kernels_D"),
    SourceOption("sgan", "-cnn_n_row_D", "sgan.cnn_n_row_D"),
    SourceOption("sgan", "-cnn_n_col_D", "sgan.cnn_n_col_D"),
    SourceOption("sgan", "-pool_n_row_D", "sgan.pool_n_row_D"),
    SourceOption("sgan", "-pool_n_col_D", "sgan.pool_n_col_D"),
    SourceOption("sgan", "-lm_G", "sgan.load_G", "`.keras`, or the source's Keras 2 files"),
    SourceOption("sgan", "-lm_D", "sgan.load_D", "`.keras`, or the source's Keras 2 files"),
    SourceOption("sgan", "-frozen_G", "sgan.frozen_G", "sersweep layer indices, name globs, or -1"),
    SourceOption("sgan", "-unloaded_G", "sgan.unloaded_G", "sersweep layer indices, name globs, or -1"),
    SourceOption("sgan", "-frozen_D", "sgan.frozen_D", "sersweep layer indices, name globs, or -1"),
    SourceOption("sgan", "-unloaded_D", "sgan.unloaded_D", "sersweep layer indices, name globs, or -1"),
    SourceOption("sgan", "--turn_off_G", "sgan.generator", "`false`"),
    SourceOption("sgan", "--unsupervised", "sgan.unsupervised"),
    SourceOption("sgan", "--default_G_D", "", "its code path could not run (a Concatenate layer is indexed instead of called); use the depth and kernel keys"),
    # ---- SER_KERAS_TF_TRAINER ------------------------------------------------------------------
    SourceOption("trainer", "-d", "ser.dropout"),
    SourceOption("trainer", "-lr", "ser.lr"),
    SourceOption("trainer", "-l2", "ser.l2"),
    SourceOption("trainer", "-cw", "ser.class_weight", "`auto` by `ser.class_weight_formula`"),
    SourceOption("trainer", "-eval", "train.eval_train", "valid and test are always evaluated"),
    SourceOption("trainer", "-nn", "ser.n_node"),
    SourceOption("trainer", "-dnn_depth", "ser.conv_depth", "the source's conv depth"),
    SourceOption("trainer", "-f_dnn_depth", "ser.f_dnn_depth"),
    SourceOption("trainer", "-p_dnn_depth", "ser.dnn_depth"),
    SourceOption("trainer", "-frozen", "ser.frozen", "sersweep layer indices, name globs, or -1"),
    SourceOption("trainer", "-unloaded", "ser.unloaded", "sersweep layer indices, name globs, or -1"),
    SourceOption("trainer", "-n_row", "ser.n_row"),
    SourceOption("trainer", "-n_col", "ser.n_col"),
    SourceOption("trainer", "-n_time", "ser.n_time"),
    SourceOption("trainer", "-l_filter", "ser.l_filter"),
    SourceOption("trainer", "-n_filter", "ser.n_filter"),
    SourceOption("trainer", "-stride", "ser.stride"),
    SourceOption("trainer", "-pool", "ser.pool"),
    SourceOption("trainer", "-pool_t", "ser.pool_t"),
    SourceOption("trainer", "-pool_r", "ser.pool_r"),
    SourceOption("trainer", "-pool_c", "ser.pool_c"),
    SourceOption("trainer", "-cs", "ser.cell"),
    SourceOption("trainer", "-t_max", "", "the time steps are the file's"),
    SourceOption("trainer", "-c_len", "", "the context length is the file's"),
    SourceOption("trainer", "-elm_hidden", "ser.elm_hidden"),
    SourceOption("trainer", "-elm_m_task", "", "one ELM per task, on every task's statistics (the source's default)"),
    SourceOption("trainer", "-kf", "launch.py final --cv", "or `train --cv`; folds are speakers (the source's were random row blocks)"),
    SourceOption("trainer", "-kf_idx", "", "every rotation of `--cv` runs, as Ray tasks in parallel"),
    SourceOption("trainer", "-n_cc", "launch.py train --cv", "rotations over the file's folds"),
    SourceOption("trainer", "-ignore_idx", "data.ignore_idx"),
    SourceOption("trainer", "-adopt_idx", "data.adopt_idx", "with `train.adopt_epochs`"),
    SourceOption("trainer", "-r_valid", "data.r_valid", "by speaker when speaker ids are known"),
    SourceOption("trainer", "-nb_sample", "launch.py train --data-mode", "`stream`: batches read from the file (the source's large-corpus mode read one block of rows at a time); the row count is the file's"),
    SourceOption("trainer", "-n_sub_b", "", "the source derived a sub-batch size from it and never used it; streaming reads one batch at a time"),
    SourceOption("trainer", "-ot", "", "results go to `OUT/metrics.json`"),
    SourceOption("trainer", "-lm", "ser.load_model", "`.keras`, or the source's Keras 2 `.h5`"),
    SourceOption("trainer", "-w_feat", "launch.py predict --features", "activations to h5"),
    SourceOption("trainer", "-w_feat_layer", "launch.py predict --features", "the layer's name"),
    SourceOption("trainer", "--conv", "ser.frame", "`conv`"),
    SourceOption("trainer", "--conv_3d", "ser.frame", "`conv_3d`"),
    SourceOption("trainer", "--r_conv_3d", "ser.frame", "`r_conv_3d`"),
    SourceOption("trainer", "--conv_hw_3d", "ser.frame", "`conv_hw_3d`"),
    SourceOption("trainer", "--r_conv", "ser.frame", "`r_conv`"),
    SourceOption("trainer", "--f_conv_highway", "ser.frame", "`conv_hw`"),
    SourceOption("trainer", "--f_dnn", "ser.frame", "`dnn`"),
    SourceOption("trainer", "--f_highway", "ser.frame", "`highway`"),
    SourceOption("trainer", "--f_residual", "ser.frame", "`residual`"),
    SourceOption("trainer", "--f_lstm", "ser.frame", "`lstm`"),
    SourceOption("trainer", "--u_lstm", "ser.utterance", "`lstm`"),
    SourceOption("trainer", "--g_lstm", "ser.utterance", "`g_lstm`"),
    SourceOption("trainer", "--u_dnn", "ser.utterance", "`dnn`"),
    SourceOption("trainer", "--u_hw", "ser.utterance", "`highway`"),
    SourceOption("trainer", "--u_residual", "ser.utterance", "`residual`"),
    SourceOption("trainer", "--g_pool", "ser.utterance", "`g_pool`"),
    SourceOption("trainer", "--post_elm", "ser.post_elm"),
    SourceOption("trainer", "--unweighted", "", "UAR, WA, F1 and precision are always reported"),
    SourceOption("trainer", "--reg", "", "continuous tasks (n_classes 1) report CCC and MSE"),
    SourceOption("trainer", "--smote_enn", "ser.smote_enn"),
    SourceOption("trainer", "--tb", "", "TensorBoard is always written (`OUT/tb`)"),
    SourceOption("trainer", "--decoding", "launch.py predict"),
    SourceOption("trainer", "--cw_predict", "", "defined but never read by the source"),
    SourceOption("trainer", "--headerless", "", "defined but never read by the source"),
    SourceOption("trainer", "--log_append", "", "defined but never read by the source"),
    SourceOption("trainer", "--default", "", "defined but never read by the source"),
)
# fmt: on

PROJECTS = {"both": "both", "sgan": "keras_sgan_ser", "trainer": "SER trainer"}


def markdown_table() -> str:
    """The README's table of source options."""
    lines = ["| source | flag | sersweep | note |", "|---|---|---|---|"]
    for option in OPTIONS:
        ours = f"`{option.ours}`" if option.ours else "—"
        lines.append(f"| {PROJECTS[option.project]} | `{option.flag}` | {ours} | {option.note} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
