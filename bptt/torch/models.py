"""Recurrent sequence models in two interchangeable forms (Gated architectures, Other stabilizers,
Truncated BPTT and the capstone).

Every model is called like ``torch.nn.RNN`` with ``batch_first=True``::

    output, new_state = model(x, state)      # x: (B, T, D) or tokens (B, T); state may be None

A :class:`RecurrentLayer` holds one set of weights in the layout of ``torch.nn.RNN`` /
``LSTM`` / ``GRU`` (``core.weight_ih_l0`` of shape (G*H, D), ``core.weight_hh_l0`` of shape
(G*H, H), biases (G*H,), G = 1, 4, 3 gates) and runs them in one of two forms:

* ``fused=True``: the ``torch.nn`` module itself (cuDNN on a GPU): fast, but the hidden
  states h_1..h_T exist only inside the kernel;
* ``fused=False``: an explicit Python loop over the time steps with the cell equations below,
  so every h_t is an ordinary tensor whose gradient dL/dh_t can be read (``retain_grad``,
  see :func:`bptt.torch.monitor.record_hidden`).

The two forms compute the same function of the same weights (tested in float64).

Cell equations, with x~_t = W_ih x_t + b_ih and gate blocks in torch's order:

* tanh RNN (Recurrence and the unrolled graph):  h_t = phi(x~_t + W_hh h_{t-1} + b_hh), phi = tanh or ReLU (IRNN);
  with layer normalisation (Other stabilizers) h_t = phi(LN(x~_t + W_hh h_{t-1} + b_hh));
* LSTM (Gated architectures): torch's blocks [i, f, g, o] = x~_t + W_hh h_{t-1} + b_hh, whose
  g is the candidate c~_t and o the output gate q_t of the Notation page,
  c_t = s(f) * c_{t-1} + s(i) * tanh(g),  h_t = s(o) * tanh(c_t)   (s = sigmoid);
* GRU (Gated architectures): r = s(x~_r + W_hr h + b_hr), z = s(x~_z + W_hz h + b_hz),
  n = tanh(x~_n + r * (W_hn h + b_hn)),  h_t = (1 - z) * n + z * h_{t-1}.

States are batch first without a layer axis: h of shape (B, H); for the LSTM a pair (h, c).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bptt import _validate as v

from .device import resolve_device
from .dropout import SequenceDropout, check_dropout_mode, check_dropout_p, dropout_mask

CELLS = ("rnn", "lstm", "gru")
INITS = ("default", "orthogonal", "identity")
_GATES = {"rnn": 1, "lstm": 4, "gru": 3}
_CORES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
IRNN_INPUT_STD = 1e-3  # Le, Jaitly and Hinton (2015): input weights drawn from N(0, 0.001^2)


def _generator(seed: int | torch.Generator) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed: expected an int or a torch.Generator, got {type(seed).__name__}")
    return torch.Generator().manual_seed(seed)


def init_linear_(layer: nn.Linear, generator: torch.Generator) -> None:
    """Re-draw a ``nn.Linear`` like torch does, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), but from
    ``generator`` instead of the global random state."""
    bound = 1.0 / math.sqrt(layer.in_features)
    with torch.no_grad():
        for p in layer.parameters():
            p.uniform_(-bound, bound, generator=generator)


# ---------------------------------------------------------------- one time step of each cell
def rnn_step(
    x_proj: torch.Tensor,
    h: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_hh: torch.Tensor,
    activation,
    norm: nn.Module | None = None,
) -> torch.Tensor:
    """h_t = phi([LN](x~_t + W_hh h_{t-1} + b_hh)); x_proj = x~_t (B, H), h (B, H) -> (B, H)."""
    pre = x_proj + F.linear(h, weight_hh, bias_hh)
    return activation(pre if norm is None else norm(pre))


def lstm_step(
    x_proj: torch.Tensor,
    state: tuple[torch.Tensor, torch.Tensor],
    weight_hh: torch.Tensor,
    bias_hh: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step; x_proj = x~_t (B, 4H), state = (h, c) each (B, H) -> (h_t, c_t)."""
    h, c = state
    i, f, g, o = (x_proj + F.linear(h, weight_hh, bias_hh)).chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def gru_step(
    x_proj: torch.Tensor, h: torch.Tensor, weight_hh: torch.Tensor, bias_hh: torch.Tensor
) -> torch.Tensor:
    """One GRU step; x_proj = x~_t (B, 3H), h (B, H) -> h_t (B, H)."""
    r_x, z_x, n_x = x_proj.chunk(3, dim=-1)
    r_h, z_h, n_h = F.linear(h, weight_hh, bias_hh).chunk(3, dim=-1)
    r = torch.sigmoid(r_x + r_h)
    z = torch.sigmoid(z_x + z_h)
    n = torch.tanh(n_x + r * n_h)
    return (1 - z) * n + z * h


class RecurrentLayer(nn.Module):
    """One recurrent layer: ``(x (B, T, D), state) -> (h (B, T, H), new_state)``.

    Args:
        cell: ``"rnn"`` (Elman, tanh or ReLU), ``"lstm"`` or ``"gru"``.
        input_size, hidden_size: D and H.
        fused: run the ``torch.nn`` kernel (True) or the explicit per-step loop (False); the
            attribute can be switched at any time, the weights stay the same.
        nonlinearity: ``"tanh"`` or ``"relu"`` for ``cell="rnn"`` (default tanh, ReLU under
            ``init="identity"``); must stay ``None`` for LSTM/GRU.
        layer_norm: layer-normalise the pre-activation of the RNN cell (Other stabilizers;
            explicit form only, ``cell="rnn"`` only).
        init: ``"default"`` (torch's U(-1/sqrt(H), 1/sqrt(H)) for every weight),
            ``"orthogonal"`` (each gate block of W_hh orthogonal, biases 0) or ``"identity"``
            (IRNN: W_hh = I, biases 0, W_ih ~ N(0, 0.001^2); ``cell="rnn"`` only).
        forget_bias: LSTM only: set the forget-gate bias b_f (split as b_ih = value,
            b_hh = 0) after the init; a large positive value remembers, a negative one forgets.
        seed: an int or a ``torch.Generator`` for the initial weights (no global RNG).
        dtype, device: of the parameters; ``device=None`` is :func:`default_device`.
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        *,
        fused: bool = True,
        nonlinearity: str | None = None,
        layer_norm: bool = False,
        init: str = "default",
        forget_bias: float | None = None,
        seed: int | torch.Generator = 0,
        dtype: torch.dtype | None = None,
        device: str | torch.device | None = None,
    ):
        super().__init__()
        v.choice("cell", cell, CELLS)
        v.choice("init", init, INITS)
        v.integer("input_size", input_size, minimum=1)
        v.integer("hidden_size", hidden_size, minimum=1)
        if cell != "rnn":
            for name, value in (("nonlinearity", nonlinearity), ("layer_norm", layer_norm)):
                if value not in (None, False):
                    raise ValueError(f"{name}: only the 'rnn' cell takes it, got cell={cell!r}")
            if init == "identity":
                raise ValueError(f"init: 'identity' (IRNN) needs cell='rnn', got cell={cell!r}")
            kwargs = {}
        else:
            nonlinearity = nonlinearity or ("relu" if init == "identity" else "tanh")
            v.choice("nonlinearity", nonlinearity, ("tanh", "relu"))
            kwargs = {"nonlinearity": nonlinearity}
        if forget_bias is not None:
            v.real("forget_bias", forget_bias)
            if cell != "lstm":
                raise ValueError(
                    f"forget_bias: only the 'lstm' cell has a forget gate, got {cell!r}"
                )
        self.cell = cell
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.nonlinearity = nonlinearity
        self.core = _CORES[cell](input_size, hidden_size, batch_first=True, dtype=dtype, **kwargs)
        self.norm = nn.LayerNorm(hidden_size, dtype=dtype) if layer_norm else None
        self.recorder: list[torch.Tensor] | None = None
        self.fused = fused
        self._init_weights(init, _generator(seed), forget_bias)
        self.to(resolve_device(device))

    # --------------------------------------------------------------------------- set-up
    @property
    def fused(self) -> bool:
        return self._fused

    @fused.setter
    def fused(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"fused: expected a bool, got {type(value).__name__}")
        if value and self.norm is not None:
            raise ValueError(
                "fused: the layer-normalised cell exists only in the explicit form; use fused=False"
            )
        self._fused = value

    def _init_weights(self, init: str, generator: torch.Generator, forget_bias) -> None:
        core, H = self.core, self.hidden_size
        with torch.no_grad():
            for p in core.parameters():
                p.uniform_(-1.0 / math.sqrt(H), 1.0 / math.sqrt(H), generator=generator)
            if init != "default":
                core.bias_ih_l0.zero_()
                core.bias_hh_l0.zero_()
            if init == "orthogonal":
                for block in core.weight_hh_l0.split(H):
                    nn.init.orthogonal_(block, generator=generator)
            elif init == "identity":
                core.weight_hh_l0.copy_(torch.eye(H, dtype=core.weight_hh_l0.dtype))
                core.weight_ih_l0.normal_(0.0, IRNN_INPUT_STD, generator=generator)
            if forget_bias is not None:
                core.bias_ih_l0[H : 2 * H] = float(forget_bias)
                core.bias_hh_l0[H : 2 * H] = 0.0

    @property
    def _weight(self) -> torch.Tensor:
        return self.core.weight_ih_l0

    def init_state(self, batch_size: int):
        """The zero state for ``batch_size`` streams: (B, H), or a pair (h, c) for the LSTM."""
        v.integer("batch_size", batch_size, minimum=1)
        w = self._weight
        zeros = w.new_zeros(batch_size, self.hidden_size)
        return (zeros, zeros.clone()) if self.cell == "lstm" else zeros

    # ----------------------------------------------------------------------- validation
    def _check_input(self, x) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x: expected a tensor of shape (B, T, D), got {type(x).__name__}")
        if x.dim() != 3 or x.shape[2] != self.input_size or x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(
                f"x: expected shape (B, T, D) with D = {self.input_size}, "
                f"B >= 1 and T >= 1, got {tuple(x.shape)}"
            )
        w = self._weight
        if x.dtype != w.dtype or x.device != w.device:
            raise ValueError(
                f"x: expected dtype {w.dtype} on {w.device} (the model's), "
                f"got {x.dtype} on {x.device}"
            )

    def _check_state(self, state, batch: int):
        if state is None:
            return None
        expected = (batch, self.hidden_size)
        if self.cell == "lstm":
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise TypeError(
                    f"state: an LSTM state is a pair (h, c) of tensors of shape "
                    f"(B, H) = {expected}, got {type(state).__name__}"
                )
            parts = tuple(state)
        else:
            parts = (state,)
        w = self._weight
        for part in parts:
            if not isinstance(part, torch.Tensor):
                raise TypeError(
                    f"state: expected tensors of shape (B, H) = {expected}, "
                    f"got {type(part).__name__}"
                )
            if tuple(part.shape) != expected:
                raise ValueError(
                    f"state: expected shape (B, H) = {expected}, got {tuple(part.shape)}"
                )
            if part.dtype != w.dtype or part.device != w.device:
                raise ValueError(
                    f"state: expected dtype {w.dtype} on {w.device}, "
                    f"got {part.dtype} on {part.device}"
                )
        return parts if self.cell == "lstm" else state

    # -------------------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor, state=None, recurrent_mask: torch.Tensor | None = None):
        """x (B, T, D), state (B, H) / (h, c) / None -> (h_1..h_T as (B, T, H), state_T).

        ``recurrent_mask`` (B, T, H), for recurrent dropout (:mod:`bptt.torch.dropout`):
        step t feeds recurrent_mask[:, t] * h_{t-1} to W_hh instead of h_{t-1} (the cell
        state c_{t-1} of the LSTM is not masked). Explicit form, RNN and LSTM cells only.
        """
        self._check_input(x)
        state = self._check_state(state, x.shape[0])
        if recurrent_mask is not None:
            self._check_recurrent_mask(recurrent_mask, x)
            return self._forward_explicit(x, state, recurrent_mask)
        if self.fused:
            return self._forward_fused(x, state)
        return self._forward_explicit(x, state)

    def _check_recurrent_mask(self, mask, x) -> None:
        if self.cell == "gru":
            raise ValueError("recurrent_mask: the GRU carries h_{t-1} outside W_hh too; "
                             "recurrent dropout is defined here for cell='rnn' or 'lstm'")
        expected = (x.shape[0], x.shape[1], self.hidden_size)
        if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != expected:
            got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"recurrent_mask: expected shape (B, T, H) = {expected}, got {got}")

    def _forward_fused(self, x, state):
        if self.recorder is not None:
            raise ValueError(
                "fused: the fused kernel hides h_1..h_T; set fused=False to "
                "record the hidden states"
            )
        if state is not None:
            state = (
                tuple(s.unsqueeze(0) for s in state) if self.cell == "lstm" else state.unsqueeze(0)
            )
        output, new_state = self.core(x, state)
        if self.cell == "lstm":
            return output, tuple(s.squeeze(0) for s in new_state)
        return output, new_state.squeeze(0)

    def _step(self):
        """The cell's one-step update as ``step(x~_t, state) -> state``."""
        weight_hh, bias_hh = self.core.weight_hh_l0, self.core.bias_hh_l0
        if self.cell == "lstm":
            return lambda x_proj, h: lstm_step(x_proj, h, weight_hh, bias_hh)
        if self.cell == "gru":
            return lambda x_proj, h: gru_step(x_proj, h, weight_hh, bias_hh)
        act = torch.tanh if self.nonlinearity == "tanh" else torch.relu
        return lambda x_proj, h: rnn_step(x_proj, h, weight_hh, bias_hh, act, self.norm)

    def _forward_explicit(self, x, state, recurrent_mask=None):
        step = self._step()
        x_proj = F.linear(x, self.core.weight_ih_l0, self.core.bias_ih_l0)  # (B, T, G*H)
        h = self.init_state(x.shape[0]) if state is None else state
        masks = [None] * x.shape[1] if recurrent_mask is None else recurrent_mask.unbind(dim=1)
        outputs = []
        # unbind, not x_proj[:, t]: the backward of T selects would build T full-size
        # gradients of x_proj (quadratic in T); unbind's backward stacks them once.
        for x_proj_t, mask_t in zip(x_proj.unbind(dim=1), masks):
            if mask_t is not None:  # recurrent dropout: only W_hh sees the masked h_{t-1}
                h = (mask_t * h[0], h[1]) if self.cell == "lstm" else mask_t * h
            h = step(x_proj_t, h)
            out = h[0] if self.cell == "lstm" else h
            if self.recorder is not None and out.requires_grad:
                out.retain_grad()
                self.recorder.append(out)
            outputs.append(out)
        return torch.stack(outputs, dim=1), h

    def extra_repr(self) -> str:
        return f"cell={self.cell!r}, fused={self.fused}"


def _check_tokens(tokens, vocab_size: int) -> None:
    if not isinstance(tokens, torch.Tensor):
        raise TypeError(f"tokens: expected a tensor of shape (B, T), got {type(tokens).__name__}")
    if tokens.dim() != 2 or tokens.dtype not in (torch.int64, torch.int32):
        raise ValueError(
            f"tokens: expected integer ids of shape (B, T) in [0, {vocab_size}), "
            f"got {tokens.dtype} of shape {tuple(tokens.shape)}"
        )
    if tokens.numel():
        low, high = int(tokens.min()), int(tokens.max())
        if low < 0 or high >= vocab_size:
            raise ValueError(
                f"tokens: expected ids in [0, {vocab_size}) (vocab_size = {vocab_size}), "
                f"got ids in [{low}, {high}]"
            )


class CharLM(nn.Module):
    """Token model: ``(tokens (B, T) int, state) -> (logits (B, T, V), new_state)``.

    o_t = W_hy h_t + b_y with h_t = cell(E[x_t], h_{t-1}) (Capstone: a character-level
    language model). Any
    token-in, class-per-step task fits (copy memory, delayed recall, characters).

    Args:
        vocab_size: V, the number of token ids (inputs and output classes).
        hidden_size: H.
        embedding_dim: size of the learned input embedding E (V, embedding_dim).
        cell: ``"lstm"`` (default), ``"gru"`` or ``"rnn"``.
        seed: int or ``torch.Generator`` for every initial weight.
        dropout: the dropout probability p in [0, 1) (0: no dropout), applied in training
            mode only, as ``dropout_mode`` says (:mod:`bptt.torch.dropout`, section
            ``capstone-dropout``): ``"zaremba"`` fresh masks on the embeddings x_t and on the
            h_t read out; ``"variational"`` one mask per chunk on x_t, h_t and on the h_{t-1}
            entering W_hh; ``"fresh"`` fresh masks on all three. The recurrent modes run the
            explicit loop.
        dropout_seed: seed of the ``torch.Generator`` that draws the masks.
        dtype, device: of the parameters (``device=None``: :func:`default_device`).
        **cell_options: passed to :class:`RecurrentLayer` (fused, nonlinearity,
            layer_norm, init, forget_bias).
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int = 128,
        *,
        embedding_dim: int = 32,
        cell: str = "lstm",
        seed: int | torch.Generator = 0,
        dropout: float = 0.0,
        dropout_mode: str = "zaremba",
        dropout_seed: int = 0,
        dtype: torch.dtype | None = None,
        device: str | torch.device | None = None,
        **cell_options,
    ):
        super().__init__()
        v.integer("vocab_size", vocab_size, minimum=1)
        v.integer("embedding_dim", embedding_dim, minimum=1)
        self.dropout = check_dropout_p(dropout, "dropout")
        self.dropout_mode = check_dropout_mode(dropout_mode)
        v.integer("dropout_seed", dropout_seed, minimum=0)
        if self.recurrent_dropout and cell == "gru":
            raise ValueError(f"dropout_mode: {dropout_mode!r} drops h_{{t-1}} before W_hh, "
                             "defined for cell='lstm' or 'rnn', got cell='gru'")
        generator = _generator(seed)
        self.mask_generator = torch.Generator(device=resolve_device(device)).manual_seed(dropout_seed)
        tied = self.dropout_mode == "variational"
        self.input_dropout = SequenceDropout(self.dropout, tied=tied, generator=self.mask_generator)
        self.output_dropout = SequenceDropout(self.dropout, tied=tied, generator=self.mask_generator)
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim, dtype=dtype)
        with torch.no_grad():
            self.embedding.weight.normal_(0.0, 1.0, generator=generator)
        self.rnn = RecurrentLayer(
            cell,
            embedding_dim,
            hidden_size,
            seed=generator,
            dtype=dtype,
            device=device,
            **cell_options,
        )
        self.readout = nn.Linear(hidden_size, vocab_size, dtype=dtype)
        init_linear_(self.readout, generator)
        self.to(resolve_device(device))

    def init_state(self, batch_size: int):
        """Zero state for ``batch_size`` streams (see :meth:`RecurrentLayer.init_state`)."""
        return self.rnn.init_state(batch_size)

    @property
    def recurrent_dropout(self) -> bool:
        """True when training drops the h_{t-1} entering W_hh (modes "variational", "fresh")."""
        return self.dropout > 0 and self.dropout_mode in ("variational", "fresh")

    def forward(self, tokens: torch.Tensor, state=None):
        _check_tokens(tokens, self.vocab_size)
        embedded = self.input_dropout(self.embedding(tokens))
        mask = None
        if self.training and self.recurrent_dropout:
            shape = (tokens.shape[0], tokens.shape[1], self.rnn.hidden_size)
            mask = dropout_mask(shape, self.dropout, tied=self.dropout_mode == "variational",
                                generator=self.mask_generator, dtype=embedded.dtype,
                                device=embedded.device)
        hidden, state = self.rnn(embedded, state, recurrent_mask=mask)
        return self.readout(self.output_dropout(hidden)), state

    @torch.no_grad()
    def sample(
        self,
        prefix: torch.Tensor,
        length: int,
        *,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Continue ``prefix`` (P,) ids by ``length`` sampled ids; returns (P + length,) ids.

        Each next id is drawn from softmax(logits / temperature) with ``generator`` (a CPU
        ``torch.Generator``; ``None`` means a fresh one seeded with 0, so output is
        reproducible). Sampling itself runs on the CPU, the model where it lives, in eval
        mode (no dropout).
        """
        if not isinstance(prefix, torch.Tensor) or prefix.dim() != 1 or prefix.numel() < 1:
            got = tuple(prefix.shape) if isinstance(prefix, torch.Tensor) else type(prefix)
            raise ValueError(f"prefix: expected a non-empty 1-D tensor of ids (P,), got {got}")
        v.integer("length", length, minimum=0)
        temperature = v.positive_float("temperature", temperature)
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        device = self.readout.weight.device
        ids = [int(i) for i in prefix.tolist()]
        was_training = self.training
        self.eval()  # no dropout masks while sampling
        try:
            logits, state = self(prefix.view(1, -1).to(device=device, dtype=torch.long))
            for _ in range(length):
                probs = torch.softmax(logits[0, -1].double().cpu() / temperature, dim=-1)
                ids.append(int(torch.multinomial(probs, 1, generator=generator)))
                logits, state = self(torch.tensor([[ids[-1]]], device=device), state)
        finally:
            self.train(was_training)
        return torch.tensor(ids, dtype=torch.long)


class SequenceRegressor(nn.Module):
    """Real-valued regression: ``(x (B, T, D), state) -> (o, new_state)``.

    ``readout="last"``: o_T = W_hy h_T + b_y of shape (B, Q) (adding problem, Gated architectures);
    ``readout="all"``: o_t = W_hy h_t + b_y for every step, shape (B, T, Q) (streams
    trained with truncated BPTT, Truncated BPTT).

    Args:
        input_size, hidden_size, output_size: D, H, Q.
        readout: ``"last"`` or ``"all"``.
        cell: ``"rnn"`` (default), ``"lstm"`` or ``"gru"``.
        seed, dtype, device, **cell_options: as for :class:`CharLM`.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int = 1,
        *,
        readout: str = "last",
        cell: str = "rnn",
        seed: int | torch.Generator = 0,
        dtype: torch.dtype | None = None,
        device: str | torch.device | None = None,
        **cell_options,
    ):
        super().__init__()
        v.choice("readout", readout, ("last", "all"))
        v.integer("output_size", output_size, minimum=1)
        generator = _generator(seed)
        self.readout_mode = readout
        self.rnn = RecurrentLayer(
            cell,
            input_size,
            hidden_size,
            seed=generator,
            dtype=dtype,
            device=device,
            **cell_options,
        )
        self.readout = nn.Linear(hidden_size, output_size, dtype=dtype)
        init_linear_(self.readout, generator)
        self.to(resolve_device(device))

    def init_state(self, batch_size: int):
        """Zero state for ``batch_size`` streams (see :meth:`RecurrentLayer.init_state`)."""
        return self.rnn.init_state(batch_size)

    def forward(self, x: torch.Tensor, state=None):
        hidden, state = self.rnn(x, state)
        if self.readout_mode == "last":
            hidden = hidden[:, -1]
        return self.readout(hidden), state


def _recurrent_block_index(name: str, s: int, S: int, D: int, H: int, G: int):
    """Where seed s's copy of a recurrent parameter ``name`` (``weight_ih``, ``weight_hh``,
    ``bias_ih``, ``bias_hh``) sits in the block-diagonal layer of S seeds with D inputs, H units
    and G gate blocks per seed: gate block k of the stacked parameter holds the S seeds' block k."""
    rows = torch.cat([torch.arange(k * S * H + s * H, k * S * H + (s + 1) * H) for k in range(G)])
    if name.startswith("bias"):
        return (rows,)
    cols = torch.arange(s * D, (s + 1) * D) if name == "weight_ih" else torch.arange(s * H, (s + 1) * H)
    return (rows[:, None], cols[None, :])


def _core_pairs(layer: RecurrentLayer):
    core = layer.core
    return [("weight_ih", core.weight_ih_l0), ("weight_hh", core.weight_hh_l0),
            ("bias_ih", core.bias_ih_l0), ("bias_hh", core.bias_hh_l0)]


def _check_seeds(seeds) -> tuple[int, ...]:
    seeds = tuple(seeds)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"seeds: expected a non-empty sequence of ints, got {seeds!r}")
    return seeds


class _BlockStack(nn.Module):
    """What :class:`SeedStack` and :class:`CharLMSeedStack` share: S single models packed into
    one stacked model, parameter by parameter, each seed's copy at ``_block_index(name, s)``;
    entries that belong to no seed start at zero and a gradient hook keeps them there."""

    def _pack(self, models, stacked) -> None:
        with torch.no_grad():
            for name, big in self._pairs(stacked):
                big.zero_()
                mask = torch.zeros_like(big)
                for s, model in enumerate(models):
                    index = self._block_index(name, s)
                    big[index] = dict(self._pairs(model))[name]
                    mask[index] = 1.0
                if not bool(mask.all()):  # some entries couple two seeds: keep them at zero
                    big.register_hook(lambda grad, mask=mask: grad * mask)

    def _unpack(self, s: int, stacked):
        v.integer("s", s, minimum=0)
        if s >= len(self.seeds):
            raise ValueError(f"s: expected an index below {len(self.seeds)}, got {s}")
        model = self._single(self.seeds[s])
        with torch.no_grad():
            big = dict(self._pairs(stacked))
            for name, small in self._pairs(model):
                small.copy_(big[name][self._block_index(name, s)])
        return model


class SeedStack(_BlockStack):
    """S independently initialised :class:`SequenceRegressor` models trained as one network.

    The S models (one per seed in ``seeds``, each exactly ``SequenceRegressor(input_size,
    hidden_size, output_size, readout="last", seed=s, **options)``) are packed into one
    block-diagonal regressor with S*H units: gate block k of the big ``weight_ih_l0`` holds the
    S models' block k on its diagonal, and so on for every weight and bias. A gradient hook
    zeroes every off-diagonal entry, so the blocks never couple; with an elementwise optimiser
    (SGD, Adam) whose off-diagonal state starts at zero, ``loss = sum over seeds of each seed's
    loss`` trains the S models exactly as S separate runs would (tested), at about the cost of
    one run, because small recurrent layers are bound by per-step overhead, not arithmetic.
    Not for layer norm (it would mix the seeds; :class:`CharLMSeedStack` normalises per seed)
    or a global-norm clip.

    Call it with ``x`` (B, T, S*D): seed s reads columns ``s*D:(s+1)*D`` (:meth:`stack_inputs`
    builds it from S batches); it returns ``y_hat`` of shape (B, S, O) and the final state.
    :meth:`unstack` gives seed s's model back as an ordinary :class:`SequenceRegressor`.
    """

    def __init__(self, seeds, input_size: int, hidden_size: int, output_size: int = 1, *,
                 cell: str = "rnn", dtype: torch.dtype | None = None,
                 device: str | torch.device | None = None, **options):
        super().__init__()
        seeds = _check_seeds(seeds)
        if options.get("layer_norm"):
            raise ValueError("layer_norm: a layer norm over the stack would mix the seeds")
        self.seeds, self.cell = seeds, cell
        self.sizes = (input_size, hidden_size, output_size)
        self.options = dict(options)
        self._dtype, self._device = dtype, device
        models = [self._single(s) for s in seeds]
        S, (D, H, O) = len(seeds), self.sizes
        self.stack = SequenceRegressor(S * D, S * H, S * O, readout="last", cell=cell, seed=0,
                                       dtype=dtype, device=device, **options)
        self._pack(models, self.stack)

    def _single(self, seed: int) -> SequenceRegressor:
        D, H, O = self.sizes
        return SequenceRegressor(D, H, O, readout="last", cell=self.cell, seed=seed,
                                 dtype=self._dtype, device=self._device, **self.options)

    @staticmethod
    def _pairs(model: SequenceRegressor):
        return _core_pairs(model.rnn) + [("readout_weight", model.readout.weight),
                                         ("readout_bias", model.readout.bias)]

    def _block_index(self, name: str, s: int):
        """Where seed s's copy of parameter ``name`` sits in the stacked parameter."""
        S, (D, H, O) = len(self.seeds), self.sizes
        if name == "readout_weight":
            return (torch.arange(s * O, (s + 1) * O)[:, None], torch.arange(s * H, (s + 1) * H)[None, :])
        if name == "readout_bias":
            return (torch.arange(s * O, (s + 1) * O),)
        return _recurrent_block_index(name, s, S, D, H, _GATES[self.cell])

    def stack_inputs(self, xs) -> torch.Tensor:
        """S tensors (B, T, D), one per seed, -> the stacked input (B, T, S*D)."""
        xs = list(xs)
        if len(xs) != len(self.seeds):
            raise ValueError(f"xs: expected {len(self.seeds)} batches (one per seed), got {len(xs)}")
        return torch.cat(xs, dim=-1)

    def forward(self, x: torch.Tensor, state=None):
        """x (B, T, S*D) -> (y_hat (B, S, O), state of the stacked layer)."""
        y_hat, state = self.stack(x, state)
        return y_hat.reshape(y_hat.shape[0], len(self.seeds), self.sizes[2]), state

    def unstack(self, s: int) -> SequenceRegressor:
        """Seed number ``s`` (an index into ``seeds``) as a separate SequenceRegressor."""
        return self._unpack(s, self.stack)


class GroupedLayerNorm(nn.Module):
    """Layer normalisation (eq. `stabilizers-layer-norm`) of each of ``groups`` consecutive
    blocks of ``size`` units on its own: a (..., groups*size) -> LN(a) of the same shape, with
    a gain ``weight`` and a bias ``bias`` of shape (groups*size,) (initially 1 and 0).
    ``groups=1`` is ``nn.LayerNorm(size)``; :class:`CharLMSeedStack` uses one group per seed."""

    def __init__(self, groups: int, size: int, *, eps: float = 1e-5,
                 dtype: torch.dtype | None = None):
        super().__init__()
        v.integer("groups", groups, minimum=1)
        v.integer("size", size, minimum=1)
        self.groups, self.size, self.eps = groups, size, float(eps)
        self.weight = nn.Parameter(torch.ones(groups * size, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(groups * size, dtype=dtype))

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        if not isinstance(a, torch.Tensor) or a.dim() < 1 or a.shape[-1] != self.groups * self.size:
            got = tuple(a.shape) if isinstance(a, torch.Tensor) else type(a).__name__
            raise ValueError(f"a: expected shape (..., {self.groups * self.size}) "
                             f"(groups * size = {self.groups} * {self.size}), got {got}")
        z = F.layer_norm(a.unflatten(-1, (self.groups, self.size)), (self.size,), eps=self.eps)
        return z.flatten(-2) * self.weight + self.bias

    def extra_repr(self) -> str:
        return f"groups={self.groups}, size={self.size}, eps={self.eps}"


class CharLMSeedStack(_BlockStack):
    """S independently initialised :class:`CharLM` models trained as one network.

    Seed s's model is exactly ``CharLM(vocab_size, hidden_size, embedding_dim=E, cell=cell,
    seed=s, **cell_options)``. The stack holds one embedding table of S*V rows (seed s's table in
    rows s*V..(s+1)*V-1, looked up with its own ids shifted by s*V), a block-diagonal recurrent
    layer of S*H units as in :class:`SeedStack`, and a block-diagonal read-out to S*V scores; with
    ``layer_norm=True`` the recurrent layer normalises each seed's H units on their own
    (:class:`GroupedLayerNorm`), so no parameter and no activation couples two seeds. Trained with
    an elementwise optimiser on the sum over seeds of each seed's loss, it follows the S
    separate runs (tested), at the cost of about one or two runs for these small models.

    Shapes: tokens (B, T, S), seed s's ids in ``tokens[..., s]`` (:meth:`stack_inputs`);
    :meth:`embed` gives the stacked input (B, T, S*E), ``self.rnn`` the states (B, T, S*H),
    :meth:`read` the scores (B, T, S, V); ``forward`` chains the three. :meth:`unstack` gives seed
    s's model back as an ordinary :class:`CharLM`.
    """

    def __init__(self, seeds, vocab_size: int, hidden_size: int, *, embedding_dim: int = 32,
                 cell: str = "lstm", dtype: torch.dtype | None = None,
                 device: str | torch.device | None = None, **cell_options):
        super().__init__()
        seeds = _check_seeds(seeds)
        self.seeds, self.cell = seeds, cell
        self.sizes = (vocab_size, embedding_dim, hidden_size)
        self.options = dict(cell_options)
        self._dtype, self._device = dtype, device
        models = [self._single(s) for s in seeds]  # validates the sizes and the options
        S, V, E, H = len(seeds), vocab_size, embedding_dim, hidden_size
        self.embedding = nn.Embedding(S * V, E, dtype=dtype)
        self.rnn = RecurrentLayer(cell, S * E, S * H, dtype=dtype, **cell_options)
        if cell_options.get("layer_norm"):
            self.rnn.norm = GroupedLayerNorm(S, H, eps=models[0].rnn.norm.eps, dtype=dtype)
        self.readout = nn.Linear(S * H, S * V, dtype=dtype)
        self.register_buffer("_offsets", torch.arange(S) * V, persistent=False)
        self.to(resolve_device(device))  # where the single models live, before packing them
        self._pack(models, self)

    def _single(self, seed: int) -> CharLM:
        V, E, H = self.sizes
        return CharLM(V, H, embedding_dim=E, cell=self.cell, seed=seed, dtype=self._dtype,
                      device=self._device, **self.options)

    @staticmethod
    def _pairs(model):
        pairs = [("embedding", model.embedding.weight)] + _core_pairs(model.rnn)
        if model.rnn.norm is not None:
            pairs += [("norm_weight", model.rnn.norm.weight), ("norm_bias", model.rnn.norm.bias)]
        return pairs + [("readout_weight", model.readout.weight), ("readout_bias", model.readout.bias)]

    def _block_index(self, name: str, s: int):
        """Where seed s's copy of parameter ``name`` sits in the stacked parameter."""
        S, (V, E, H) = len(self.seeds), self.sizes
        if name == "embedding":
            return (torch.arange(s * V, (s + 1) * V),)
        if name.startswith("norm"):
            return (torch.arange(s * H, (s + 1) * H),)
        if name == "readout_weight":
            return (torch.arange(s * V, (s + 1) * V)[:, None], torch.arange(s * H, (s + 1) * H)[None, :])
        if name == "readout_bias":
            return (torch.arange(s * V, (s + 1) * V),)
        return _recurrent_block_index(name, s, S, E, H, _GATES[self.cell])

    def stack_inputs(self, tokens) -> torch.Tensor:
        """S id tensors (B, T), one per seed, -> the stacked ids (B, T, S)."""
        tokens = list(tokens)
        if len(tokens) != len(self.seeds):
            raise ValueError(f"tokens: expected {len(self.seeds)} batches (one per seed), got {len(tokens)}")
        return torch.stack(tokens, dim=-1)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T, S) of ids in [0, V) -> the stacked embeddings (B, T, S*E)."""
        S, V = len(self.seeds), self.sizes[0]
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 3 or tokens.shape[2] != S:
            got = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
            raise ValueError(f"tokens: expected ids of shape (B, T, S) with S = {S} seeds, got {got}")
        _check_tokens(tokens.flatten(1), V)
        return self.embedding(tokens + self._offsets).flatten(-2)

    def read(self, hidden: torch.Tensor) -> torch.Tensor:
        """States (B, T, S*H) -> scores (B, T, S, V), seed s's in ``[:, :, s]``."""
        return self.readout(hidden).unflatten(-1, (len(self.seeds), self.sizes[0]))

    def forward(self, tokens: torch.Tensor, state=None):
        """tokens (B, T, S) -> (logits (B, T, S, V), state of the stacked layer (B, S*H))."""
        hidden, state = self.rnn(self.embed(tokens), state)
        return self.read(hidden), state

    def unstack(self, s: int) -> CharLM:
        """Seed number ``s`` (an index into ``seeds``) as a separate CharLM."""
        return self._unpack(s, self)
