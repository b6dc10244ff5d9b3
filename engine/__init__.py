"""A small numpy engine for batch-normalization experiments (see docs/architecture.md)."""
from engine.batchnorm import (
    BatchNorm1d,
    BatchRenorm1d,
    RunningAverageBatchNorm1d,
    batchnorm_backward,
    batchnorm_forward,
    batchrenorm_backward,
    batchrenorm_forward,
    renorm_schedule,
    running_average_batchnorm_backward,
    running_average_batchnorm_forward,
)
from engine.batchnorm2d import BatchNorm2d, batchnorm2d_backward, batchnorm2d_forward
from engine.conv import (
    AvgPool2d,
    Conv2d,
    Flatten,
    MaxPool2d,
    avgpool2d_backward,
    avgpool2d_forward,
    conv2d_backward,
    conv2d_forward,
    maxpool2d_backward,
    maxpool2d_forward,
)
from engine.data import make_cats, make_spirals, train_test_split
from engine.gradcheck import check_layer_gradients, numeric_gradient, relative_error
from engine.layers import (
    Dropout,
    Linear,
    ReLU,
    Sigmoid,
    Tanh,
    dropout_backward,
    dropout_forward,
    dropout_mask,
    init_weights,
    linear_backward,
    linear_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from engine.layernorm import (
    GroupNorm,
    LayerNorm,
    groupnorm_backward,
    groupnorm_forward,
    layernorm_backward,
    layernorm_forward,
)
from engine.losses import logistic_loss, softmax_cross_entropy
from engine.measure import (
    PreactivationRecorder,
    internal_covariate_shift,
    percentiles,
    weight_gradient_norms,
)
from engine.network import MLP, HiddenBlock, build_mlp
from engine.normalization import (
    GhostBatchNorm1d,
    JitteredNorm,
    draw_jitter,
    ghost_batchnorm_backward,
    ghost_batchnorm_forward,
    jitter_backward,
    jitter_forward,
)
from engine.optim import SGD
from engine.sequential import Sequential
from engine.train import accuracy, minibatch_indices, predict, train, train_step

__all__ = [
    "BatchNorm1d", "BatchRenorm1d", "RunningAverageBatchNorm1d",
    "batchnorm_forward", "batchnorm_backward", "batchrenorm_forward", "batchrenorm_backward",
    "running_average_batchnorm_forward", "running_average_batchnorm_backward",
    "renorm_schedule",
    "BatchNorm2d", "batchnorm2d_forward", "batchnorm2d_backward",
    "LayerNorm", "GroupNorm", "layernorm_forward", "layernorm_backward",
    "groupnorm_forward", "groupnorm_backward",
    "Conv2d", "MaxPool2d", "AvgPool2d", "Flatten", "conv2d_forward", "conv2d_backward",
    "maxpool2d_forward", "maxpool2d_backward", "avgpool2d_forward", "avgpool2d_backward",
    "make_cats", "make_spirals", "train_test_split",
    "check_layer_gradients", "numeric_gradient", "relative_error",
    "Linear", "Sigmoid", "Tanh", "ReLU", "Dropout", "init_weights",
    "linear_forward", "linear_backward", "sigmoid_forward", "sigmoid_backward",
    "tanh_forward", "tanh_backward", "relu_forward", "relu_backward",
    "dropout_mask", "dropout_forward", "dropout_backward",
    "softmax_cross_entropy", "logistic_loss",
    "PreactivationRecorder", "internal_covariate_shift", "percentiles", "weight_gradient_norms",
    "MLP", "HiddenBlock", "build_mlp",
    "Sequential",
    "GhostBatchNorm1d", "ghost_batchnorm_forward", "ghost_batchnorm_backward",
    "JitteredNorm", "draw_jitter", "jitter_forward", "jitter_backward",
    "SGD",
    "train_step", "train", "minibatch_indices", "predict", "accuracy",
]
