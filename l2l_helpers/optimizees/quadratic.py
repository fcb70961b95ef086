"""The paper's synthetic optimizees: 10-d quadratics f(theta) = ||W theta - y||^2 (Section 3.1, Figure 4 left)."""

from __future__ import annotations

import math

import numpy as np
import torch

from l2l_helpers.optimizees.base import Problem, TaskBatch


class QuadraticTasks(TaskBatch):
    """f(theta) = ||W theta - y||^2 for each task's own W (d x d) and y (d)."""

    def __init__(self, seeds: list[int], dim: int, init_scale: float, device: torch.device, scale: float = 1.0) -> None:
        self.seeds, self.dim, self.device, self.scale = seeds, dim, device, scale
        ws, ys, thetas = [], [], []
        for seed in seeds:  # drawn on the CPU so that every device sees the same functions
            gen = torch.Generator().manual_seed(seed)
            ws.append(torch.randn(dim, dim, generator=gen))
            ys.append(torch.randn(dim, generator=gen))
            thetas.append(torch.randn(dim, generator=gen) * init_scale)
        self.W = torch.stack(ws).to(device)  # (B, d, d)
        self.y = torch.stack(ys).to(device)  # (B, d)
        self._theta0 = torch.stack(thetas).to(device)  # (B, d)

    def init_theta(self) -> torch.Tensor:
        return self._theta0.clone()

    def loss(self, theta: torch.Tensor, step: int = 0) -> torch.Tensor:
        copies = self.copies(theta)
        points = theta.view(copies, self.n_tasks, self.dim).transpose(0, 1)  # (B, copies, d)
        return self.loss_at(points).transpose(0, 1).reshape(-1)  # (copies * B,)

    def loss_at(self, points: torch.Tensor) -> torch.Tensor:
        """f_b at many points per task: points (B, N, d) -> losses (B, N) (e.g. a grid for a contour plot)."""
        residual = points @ self.W.transpose(1, 2).to(points.dtype) - self.y.unsqueeze(1).to(points.dtype)
        return self.scale * (residual * residual).sum(-1)


class QuadraticProblem(Problem):
    """The paper's synthetic family: f(theta) = ||W theta - y||^2, W and y i.i.d. standard Gaussian.

    ``scale`` multiplies f (1 in the paper): a way to change the gradients' magnitude (notebook 03).
    """

    def __init__(self, dim: int = 10, init_scale: float = 0.01, scale: float = 1.0) -> None:
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim={dim!r} must be a positive integer (the paper uses 10)")
        if not (init_scale >= 0 and math.isfinite(init_scale)):
            raise ValueError(f"init_scale={init_scale!r} must be a non-negative finite number")
        if not (scale > 0 and math.isfinite(scale)):
            raise ValueError(f"scale={scale!r} must be a positive finite number")
        self.name, self.dim, self.init_scale, self.scale = "quadratic", dim, float(init_scale), float(scale)

    def _make_tasks(self, seeds: list[int], device: torch.device, split: str) -> QuadraticTasks:
        return QuadraticTasks(seeds, self.dim, self.init_scale, device, self.scale)

    def describe(self) -> str:
        factor = "" if self.scale == 1 else f"{self.scale:g} * "
        return f"quadratic: {factor}||W theta - y||^2 with W {self.dim}x{self.dim}, y {self.dim}-d, i.i.d. N(0, 1)"


def landscape(tasks: QuadraticTasks, paths: list[np.ndarray], n: int = 80) -> tuple[np.ndarray, ...]:
    """Grid (xs, ys, log10 f) of task 0 of a 2-d quadratic, framing the paths and the minimum."""
    if tasks.dim != 2:
        raise ValueError(f"a 2-d picture needs a 2-d quadratic, got dim={tasks.dim}")
    w_mat, y = tasks.W[0].cpu().double(), tasks.y[0].cpu().double()
    optimum = torch.linalg.lstsq(w_mat, y.unsqueeze(-1)).solution.squeeze(-1).numpy()
    points = np.concatenate([np.concatenate(paths), optimum[None]], axis=0) if paths else optimum[None]
    low, high = points.min(0), points.max(0)
    pad = 0.15 * np.maximum(high - low, 0.5)
    xs = np.linspace(low[0] - pad[0], high[0] + pad[0], n)
    ys = np.linspace(low[1] - pad[1], high[1] + pad[1], n)
    grid = torch.tensor(np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2))  # (n*n, 2)
    z = tasks.loss_at(grid.to(tasks.W.device).unsqueeze(0).expand(tasks.n_tasks, -1, -1))[0]
    return xs, ys, np.log10(z.cpu().numpy() + 1e-12).reshape(n, n)
