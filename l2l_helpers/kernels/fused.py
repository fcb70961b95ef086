"""A fast step of the coordinatewise LSTM: the same arithmetic as ``nn.LSTMCell``, fused by hand (paper, Section 2.1).

Meta-training spends nearly all its time in the optimizer network: 15,910 coordinates x 100 steps x
(forward + backward) per MNIST trajectory. Autograd over ``nn.LSTMCell`` does it in dozens of small
operations per layer, several on strided views that PyTorch's CPU kernels handle slowly. This step:

* computes each layer's four gates with one matrix product, the biases folded in as a column of ones:
  ``z = [x, h, 1] @ [W_ih, W_hh, b_ih + b_hh]^T`` (N, 4H);
* evaluates all four gate nonlinearities with one ``sigmoid`` over the contiguous (N, 4H) block, using
  tanh(z) = 2 sigmoid(2z) - 1 for the cell input g (its rows of the weights are doubled) and for
  tanh(c) (a vectorized ``sigmoid`` is several times faster than ``tanh`` on CPU);
* writes h and c straight into the new state tensor (num_layers, 2, N, H), without stacking;
* has a hand-written backward (:class:`FusedLSTMStep`): about ten elementwise operations and two
  matrix products per layer, from the gates the forward kept.

The result equals the ``nn.LSTMCell`` stack to float rounding; ``tests/test_kernels_fused.py`` checks
outputs, states and meta-gradients against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def _gate_scale(hidden: int, like: torch.Tensor, g: float) -> torch.Tensor:
    """(4H,) factors on the gates (PyTorch's order i, f, g, o): ``g`` on the cell input g, 1 elsewhere."""
    scale = torch.ones(4 * hidden, dtype=like.dtype, device=like.device)
    scale[2 * hidden : 3 * hidden] = g
    return scale


def layer_weights(params: Sequence[torch.Tensor], layer: int) -> torch.Tensor:
    """[W_ih, W_hh, b_ih + b_hh] of one layer: shape (4H, in + H + 1)."""
    w_ih, w_hh, b_ih, b_hh = params[4 * layer : 4 * layer + 4]
    return torch.cat([w_ih, w_hh, (b_ih + b_hh).unsqueeze(1)], dim=1)


def _forward(
    x: torch.Tensor, state: torch.Tensor, params: Sequence[torch.Tensor], output_scale: float, save: bool
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """One step of the stacked LSTM and its output layer, without autograd.

    x (N, input_size), state (num_layers, 2, N, H), both contiguous. Returns (update (N,), new state,
    saved), where ``saved`` holds per layer what the backward needs when ``save``: xh = [x, h, 1]
    (N, in + H + 1), the gates s = sigmoid(z_i, z_f, 2 z_g, z_o) (N, 4H), g = tanh(z_g) and tanh(c)
    (N, H each). The states (c_prev, the new h) are kept by autograd anyway.
    """
    num_layers, _, n, hidden = state.shape
    double_g = _gate_scale(hidden, x, 2.0)
    ones = x.new_ones(n, 1)
    new_state = x.new_empty(num_layers, 2, n, hidden)
    saved: list[torch.Tensor] = []
    inp = x
    for layer in range(num_layers):
        h_prev, c_prev = state[layer, 0], state[layer, 1]  # (N, H) each
        xh = torch.cat([inp, h_prev, ones], dim=1)  # (N, in + H + 1)
        weights = layer_weights(params, layer) * double_g.unsqueeze(1)  # (4H, in + H + 1), g rows doubled
        s = torch.mm(xh, weights.t()).sigmoid_()  # (N, 4H): sigmoid(z_i), sigmoid(z_f), sigmoid(2 z_g), sigmoid(z_o)
        i, f, s_g, o = s.split(hidden, dim=1)  # (N, H) views
        g = s_g * 2.0 - 1.0  # tanh(z_g) = 2 sigmoid(2 z_g) - 1
        c = torch.mul(f, c_prev, out=new_state[layer, 1]).addcmul_(i, g)  # c = f c_prev + i g
        tanh_c = torch.sigmoid(c * 2.0).mul_(2.0).sub_(1.0)
        h = torch.mul(o, tanh_c, out=new_state[layer, 0])  # h = o tanh(c)
        if save:
            saved += [xh, s, g, tanh_c]
        inp = h
    w_out, b_out = params[-2], params[-1]
    update = torch.addmm(b_out, inp, w_out.t()).squeeze(1) * output_scale  # (N,)
    return update, new_state, saved


class FusedLSTMStep(torch.autograd.Function):
    """``(update, new_state) = step(x, state, phi)`` with a hand-written backward (backpropagation through time).

    x (N, input_size) and state (num_layers, 2, N, H), contiguous, as in :func:`_forward`.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, state: torch.Tensor, output_scale: float, *params: torch.Tensor) -> Any:
        update, new_state, saved = _forward(x, state, params, output_scale, save=True)
        ctx.output_scale = output_scale
        ctx.n_params = len(params)
        ctx.save_for_backward(state, new_state, *params, *saved)
        ctx.set_materialize_grads(False)
        return update, new_state

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, d_update: torch.Tensor | None, d_new_state: torch.Tensor | None) -> Any:
        state, new_state, *rest = ctx.saved_tensors
        params, saved = rest[: ctx.n_params], rest[ctx.n_params :]
        num_layers, _, n, hidden = new_state.shape
        grads: list[torch.Tensor | None] = [None] * ctx.n_params
        d_state = new_state.new_zeros(new_state.shape) if ctx.needs_input_grad[1] else None
        if d_new_state is not None:
            d_new_state = d_new_state.contiguous()

        def incoming(layer: int, which: int) -> torch.Tensor | None:
            return None if d_new_state is None else d_new_state[layer, which]

        # output layer: update = (h_top @ w_out^T + b_out) * scale
        w_out = params[-2]
        dh = incoming(num_layers - 1, 0)
        if d_update is not None:
            du = d_update * ctx.output_scale  # (N,)
            grads[-2] = (du @ new_state[num_layers - 1, 0]).unsqueeze(0)  # (1, H)
            grads[-1] = du.sum().reshape(1)
            dh = torch.outer(du, w_out[0]) if dh is None else torch.addr(dh, du, w_out[0])  # (N, H)
        four_g = _gate_scale(hidden, new_state, 4.0).unsqueeze(1)  # (4H, 1): 4 on the g rows, 1 elsewhere
        for layer in reversed(range(num_layers)):
            xh, gates, g, tanh_c = saved[4 * layer : 4 * layer + 4]
            dc_next = incoming(layer, 1)
            if dh is None and dc_next is None:  # nothing reaches this layer
                break
            if dh is None:
                dh = torch.zeros_like(g)
            i, f, _, o = gates.split(hidden, dim=1)  # (N, H) views
            c_prev = state[layer, 1]
            # dc = dc_next + dh o (1 - tanh(c)^2); o tanh(c) is the new h
            do_dc = torch.addcmul(o, new_state[layer, 0], tanh_c, value=-1.0)
            dc = dh * do_dc if dc_next is None else torch.addcmul(dc_next, dh, do_dc)  # (N, H)
            # dz: gradient of the pre-activations z = [x, h, 1] @ [W_ih, W_hh, b]^T, sigma' = s (1 - s);
            # on the g rows sigma'(2 z_g) = (1 - g^2) / 4: those rows hold dz_g / 4 (the 4 goes into the weights)
            dz = torch.addcmul(gates, gates, gates, value=-1.0)  # (N, 4H)
            dz.view(n, 4, hidden)[:, :3].mul_(dc.unsqueeze(1))  # i, f and g act through c
            dz_i, dz_f, dz_g, dz_o = dz.split(hidden, dim=1)
            dz_i.mul_(g)  # dc g i (1 - i)
            dz_f.mul_(c_prev)  # dc c_prev f (1 - f)
            dz_g.mul_(i)  # dc i (1 - g^2) / 4
            dz_o.mul_(dh).mul_(tanh_c)  # dh tanh(c) o (1 - o)
            if d_state is not None:
                torch.mul(dc, f, out=d_state[layer, 1])
            inp = xh.shape[1] - hidden - 1
            dw = (xh.t() @ dz).t() * four_g  # (4H, in + H + 1): [dW_ih, dW_hh, db]
            grads[4 * layer] = dw[:, :inp].contiguous()
            grads[4 * layer + 1] = dw[:, inp:-1].contiguous()
            grads[4 * layer + 2] = dw[:, -1].contiguous()
            grads[4 * layer + 3] = dw[:, -1].clone()
            w_ih, w_hh = params[4 * layer], params[4 * layer + 1]
            if layer > 0:
                dxh = dz @ (torch.cat([w_ih, w_hh], dim=1) * four_g)  # (N, in + H)
                if d_state is not None:
                    d_state[layer, 0].copy_(dxh[:, inp:])
                below = incoming(layer - 1, 0)
                dh = dxh[:, :inp] if below is None else torch.add(dxh[:, :inp], below)
            elif d_state is not None:
                torch.mm(dz, w_hh * four_g, out=d_state[layer, 0])
        return (None, d_state, None, *grads)


def needs_graph(state: torch.Tensor, params: Sequence[torch.Tensor]) -> bool:
    """Whether a step must record an autograd node: gradients are on and the state or phi needs one."""
    return torch.is_grad_enabled() and (state.requires_grad or any(p.requires_grad for p in params))


def fused_step(
    x: torch.Tensor, state: torch.Tensor, params: Sequence[torch.Tensor], output_scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on preprocessed gradients x (N, input_size): (update (N,), new state).

    ``state`` has shape (num_layers, 2, N, H). Keeps the autograd graph (one node per step) when a
    gradient is needed, and nothing otherwise (evaluation, ``LearnedOptimizer.step``). ``x`` itself
    must not need a gradient: second-order meta-training uses the ``nn.LSTMCell`` path. On CPUs
    :class:`~l2l_helpers.optimizer.coordinatewise_lstm.CoordinatewiseLSTM` runs the C++ version of this step
    (:mod:`l2l_helpers.kernels.native`) instead, where it can be built.
    """
    if needs_graph(state, params):
        return FusedLSTMStep.apply(x, state.contiguous(), output_scale, *params)
    with torch.no_grad():
        update, new_state, _ = _forward(x, state.contiguous(), params, output_scale, save=False)
    return update, new_state
