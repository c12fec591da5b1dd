"""Recurrent models, as PyTorch's fused kernels compute them:

- RNN: the Elman network of Mikolov et al. 2010, a tanh hidden state.
- LSTM: Hochreiter & Schmidhuber 1997 with the forget gate of Gers et al. 2000, and no
  peephole connections (Graves 2013 has them; PyTorch's nn.LSTM does not).
- GRU: Cho et al. 2014, except that the reset gate multiplies the recurrent term after its
  matrix product, r * (W_hn h + b_hn), as cuDNN and nn.GRU do, where the paper has W_hn (r * h).

Each cell is written out below as its equations, to be read. The fused PyTorch module (nn.RNN,
nn.LSTM, nn.GRU) owns the weights and is the fast path; the cells read the same weights in
PyTorch's gate layout, so both paths compute the same function (tested) and one checkpoint
serves either. The `fused` option (`--no-fused`) trains and samples with the readable cells,
whose nonlinearities `--diagnostics` can then see.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import CharModel, ModelConfig


def rnn_cell(x, state, w_ih, w_hh, b_ih, b_hh):
    (h,) = state
    h = torch.tanh(F.linear(x, w_ih, b_ih) + F.linear(h, w_hh, b_hh))
    return h, (h,)


def lstm_cell(x, state, w_ih, w_hh, b_ih, b_hh):
    h, c = state
    i, f, g, o = (F.linear(x, w_ih, b_ih) + F.linear(h, w_hh, b_hh)).chunk(4, dim=-1)
    # the memory c is carried additively, so gradients survive many steps
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # forget some, write some
    h = torch.sigmoid(o) * torch.tanh(c)  # show some
    return h, (h, c)


def gru_cell(x, state, w_ih, w_hh, b_ih, b_hh):
    (h,) = state
    x_r, x_z, x_n = F.linear(x, w_ih, b_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)  # reset: how much of the past shapes the candidate
    z = torch.sigmoid(x_z + h_z)  # update: how much of the past to keep as is
    n = torch.tanh(x_n + r * h_n)
    h = (1 - z) * n + z * h
    return h, (h,)


class Recurrent(CharModel):
    """Embedding -> stacked recurrent layers -> linear head. The state is the fused module's
    (n_layer, B, n_hidden) hidden state(s), as a tuple: (h,) or, for the LSTM, (h, c)."""

    fused_cls: type[nn.RNNBase]  # set by the subclasses below, with their `cell`

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        c = config
        self.fused = c.fused
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        # dropout on the non-recurrent connections only, as Zaremba et al. 2014: the inputs,
        # between layers (nn.RNN's own `dropout`) and the outputs
        self.rnn = self.fused_cls(c.n_embd, c.n_hidden, num_layers=c.n_layer, dropout=self.between_layers, batch_first=True)
        self.drop = nn.Dropout(c.dropout)
        self.lm_head = nn.Linear(c.n_hidden, c.vocab_size)
        with torch.no_grad():
            self.lm_head.weight.mul_(0.1)  # start near uniform: first loss ln(V)
        # the readable path runs each layer's cell in a module of its own (no weights), so that
        # diagnostics can name its nonlinearities by layer
        self.cells = nn.ModuleList(Cell(self.cell) for _ in range(c.n_layer))

    def forward(self, idx, real=None):
        h, _ = self.run(self.drop(self.wte(idx)), self.start(idx.shape[0]))
        return self.lm_head(self.drop(h))

    def start(self, batch_size):
        zeros = torch.zeros(self.config.n_layer, batch_size, self.config.n_hidden, device=self.device)
        return (zeros, zeros.clone()) if self.fused_cls is nn.LSTM else (zeros,)

    def step(self, idx, state):
        h, state = self.run(self.wte(idx)[:, None], state)
        return self.lm_head(h[:, 0]), state

    def recurrent_weights(self) -> dict[str, torch.Tensor]:
        """The fused module's weights as this batch uses them: in training with --weight-drop, each
        hidden-to-hidden matrix with a random share of its entries zeroed, the same for every time
        step of the batch (DropConnect, as AWD-LSTM: Merity et al. 2017); else as they are."""
        weights = dict(self.rnn.named_parameters())
        if not self.weight_dropping:
            return weights
        p = self.config.weight_drop
        # a uniform draw compared with p: on the CPU three times as fast as F.dropout's Bernoulli draw,
        # which cost a 2-layer lstm a third of its step
        return {k: w * ((torch.rand_like(w) >= p) * (1 / (1 - p))) if k.startswith("weight_hh") else w
                for k, w in weights.items()}

    @property
    def weight_dropping(self) -> bool:
        return self.training and self.dropping and self.config.weight_drop > 0

    @property
    def between_layers(self) -> float:
        """The dropout between layers: none with one layer, or while training goes without dropout."""
        return self.config.dropout if self.config.n_layer > 1 and self.dropping else 0.0

    def train(self, mode: bool = True):
        super().train(mode)
        # nn.LSTM drops between its layers when its own `dropout` is set and it is training; its
        # training mode stays as the model's (on CUDA, cuDNN keeps what backward needs only then)
        self.rnn.dropout = self.between_layers
        return self

    def run(self, x, state):
        """(B, T, n_embd) inputs and the state before them -> (B, T, n_hidden) outputs, state after."""
        if self.fused:
            hx = state if len(state) == 2 else state[0]
            if self.weight_dropping:  # the fused module run with the dropped weights in place of its own
                out, hx = torch.func.functional_call(self.rnn, self.recurrent_weights(), (x, hx))
            else:
                out, hx = self.rnn(x, hx)
            return out, hx if isinstance(hx, tuple) else (hx,)
        weights = self.recurrent_weights()
        outs = []
        for t in range(x.shape[1]):
            h, layer_states = x[:, t], []
            for i in range(self.config.n_layer):
                if i > 0:
                    h = F.dropout(h, self.rnn.dropout, self.training)
                layer = [weights[f"{w}_l{i}"] for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
                h, s = self.cells[i](h, tuple(part[i] for part in state), *layer)
                layer_states.append(s)
            state = tuple(torch.stack(part) for part in zip(*layer_states))
            outs.append(h)
        return torch.stack(outs, dim=1), state


class Cell(nn.Module):
    """One layer's readable cell; it reads the fused module's weights, passed in."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, x, state, *weights):
        return self.cell(x, state, *weights)


class RNN(Recurrent):
    fused_cls = nn.RNN
    cell = staticmethod(rnn_cell)


class LSTM(Recurrent):
    fused_cls = nn.LSTM
    cell = staticmethod(lstm_cell)


class GRU(Recurrent):
    fused_cls = nn.GRU
    cell = staticmethod(gru_cell)
