"""LSTM and RNN (netdef/layers/recurrent.py)."""
from __future__ import annotations

import numpy as np

from .base import op


def _logistic(x):
    # LSTMUnit's sigmoid: 1 / (1 + exp(-x)).
    return 1.0 / (1.0 + np.exp(-x))


@op("LSTM", "RNN")
def _recurrent(ctx, layer, bottoms, params):
    """RecurrentLayer's unrolled net (lstm_layer.cpp / rnn_layer.cpp FillUnrolledNet) run step
    by step: x (T, N, ...), cont (T, N), [x_static (N, ...)], [h_0 (, c_0) with expose_hidden]."""
    rp = layer.recurrent_param
    lstm = layer.type == "LSTM"
    h_dim = rp.num_output
    x, cont = bottoms[0], bottoms[1]
    t_steps, n = x.shape[0], x.shape[1]
    n_states = 2 if lstm else 1
    fixed = len(bottoms) - (n_states if rp.expose_hidden else 0)
    static = bottoms[2] if fixed == 3 else None
    w_x, b_x = params[0], params[1]
    k = 2
    w_s = None
    if static is not None:
        w_s = params[2]
        k = 3
    w_h = params[k]
    x_t = x.reshape(t_steps, n, -1) @ w_x.T + b_x                      # W_xc_x = W_xc x + b_c
    s_t = static.reshape(n, -1) @ w_s.T if static is not None else 0.0
    if rp.expose_hidden:
        h = bottoms[fixed].reshape(n, h_dim)
        c = bottoms[fixed + 1].reshape(n, h_dim) if lstm else None
    else:
        h = np.zeros((n, h_dim))
        c = np.zeros((n, h_dim)) if lstm else None
    outs = []
    for t in range(t_steps):
        cont_t = cont[t].reshape(n, 1)
        gate = (h * cont_t) @ w_h.T + x_t[t] + s_t                      # h_conted, W_hc h, sums
        if lstm:
            i = _logistic(gate[:, :h_dim])
            f = np.where(cont_t == 0, 0.0, cont_t * _logistic(gate[:, h_dim:2 * h_dim]))   # LSTMUnit
            o = _logistic(gate[:, 2 * h_dim:3 * h_dim])
            g = np.tanh(gate[:, 3 * h_dim:])
            c = f * c + i * g
            h = o * np.tanh(c)
            outs.append(h)
        else:
            h = np.tanh(gate)
            outs.append(np.tanh(h @ params[k + 1].T + params[k + 2]))       # o_t = tanh(W_ho h_t + b_o)
    tops = [np.stack(outs)]
    if rp.expose_hidden:
        tops.append(h.reshape(1, n, h_dim))
        if lstm:
            tops.append(c.reshape(1, n, h_dim))
    return tops
