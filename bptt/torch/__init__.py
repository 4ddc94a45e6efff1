"""``bptt.torch``: training recurrent models with (truncated) BPTT on the CPU or a GPU.

The chapters that train with PyTorch use this subpackage. One module per job:

* :mod:`.device` - the one place that picks the device (``BPTT_DEVICE`` overrides);
* :mod:`.models` - tanh-RNN/LSTM/GRU layers in fused and explicit form, a char LM, a regressor;
* :mod:`.state` - detaching and resetting hidden states between chunks and sequences;
* :mod:`.contract` - the calling conventions (streams, ``model(x, state)``, scalar losses);
* :mod:`.tbptt` - TBPTT(k1, k2) training and stream evaluation;
* :mod:`.monitor` - gradient norms, clipping, dL/dh_t, divergence errors;
* :mod:`.regularize` - the gradient-norm regulariser Omega of Pascanu et al. (Other stabilizers);
* :mod:`.memory` - saved-for-backward bytes and the CUDA peak;
* :mod:`.checkpoint` - checkpointed BPTT (sqrt(T) memory, same gradient);
* :mod:`.data` - tensors from :mod:`bptt.tasks`, batchify, chunks;
* :mod:`.capstone` - the capstone's two configurations, its training loop and bits per character;
* :mod:`.dropout` - dropout masks for recurrent networks (fresh or one per sequence);
* :mod:`.sequences` - teacher forcing, padded batches and bidirectional RNNs, with a seed axis;
* :mod:`.progress` - ``tqdm.auto`` bars that ``BPTT_PROGRESS=0`` silences.
"""

from .capstone import (
    CAPSTONE_CHUNK,
    CAPSTONE_CLIP,
    CAPSTONE_CONFIGS,
    DROPOUT_VARIANTS,
    CapstoneRun,
    capstone_config,
    capstone_lr,
    capstone_model,
    stream_bpc,
    token_bits,
    train_capstone,
    train_epochs,
)
from .checkpoint import CheckpointMemory, checkpoint_saved_bytes, checkpointed_loss
from .contract import call_model, check_stream, scalar_loss, token_cross_entropy
from .data import batchify, iter_chunks, next_token_pairs, to_tensors
from .device import default_device, resolve_device
from .memory import SavedTensorTracker, cuda_peak_bytes, saved_bytes
from .models import (
    CELLS,
    INITS,
    CharLM,
    RecurrentLayer,
    SequenceRegressor,
    gru_step,
    init_linear_,
    lstm_step,
    rnn_step,
)
from .monitor import (
    HiddenRecord,
    NonFiniteError,
    check_finite,
    clip_grad_norm,
    clip_grad_value,
    grad_norms,
    record_hidden,
    saturation_fraction,
)
from .progress import progress_bar, progress_enabled
from .regularize import gradient_norm_penalty
from .state import detach_state, map_state, reset_state
from .tbptt import (
    TrainHistory,
    Update,
    credit_map,
    evaluate_stream,
    loss_credit,
    tbptt_schedule,
    train_tbptt,
)

__all__ = [
    "CAPSTONE_CHUNK",
    "CAPSTONE_CLIP",
    "CAPSTONE_CONFIGS",
    "CELLS",
    "DROPOUT_VARIANTS",
    "INITS",
    "CapstoneRun",
    "CharLM",
    "CheckpointMemory",
    "HiddenRecord",
    "NonFiniteError",
    "RecurrentLayer",
    "SavedTensorTracker",
    "SequenceRegressor",
    "TrainHistory",
    "Update",
    "batchify",
    "call_model",
    "capstone_config",
    "capstone_lr",
    "capstone_model",
    "check_finite",
    "check_stream",
    "checkpoint_saved_bytes",
    "checkpointed_loss",
    "clip_grad_norm",
    "clip_grad_value",
    "credit_map",
    "cuda_peak_bytes",
    "default_device",
    "detach_state",
    "evaluate_stream",
    "grad_norms",
    "gradient_norm_penalty",
    "gru_step",
    "init_linear_",
    "iter_chunks",
    "loss_credit",
    "lstm_step",
    "map_state",
    "next_token_pairs",
    "progress_bar",
    "progress_enabled",
    "record_hidden",
    "reset_state",
    "resolve_device",
    "rnn_step",
    "saturation_fraction",
    "saved_bytes",
    "scalar_loss",
    "stream_bpc",
    "tbptt_schedule",
    "to_tensors",
    "token_bits",
    "token_cross_entropy",
    "train_capstone",
    "train_epochs",
    "train_tbptt",
]
