"""Second-order machinery of TRPO and of MAML's outer loop: flat parameter vectors, conjugate
gradient, Hessian- and Fisher-vector products (`hessian_operator` by double backprop, and
`gauss_newton_operator`, the KL's Hessian at its anchor as JᵀMJ), a backtracking line search,
`trust_region_step` (the step from a loss, its gradient and a Fisher operator) and `trpo_step`
(the same from closures).

Parameters are plain `dict[str, Tensor]`, the ones passed to `torch.func.functional_call`
(docs/architecture.md §3). Objectives are closures `params -> scalar` that may run MAML
inner-loop steps inside, so every derivative here goes through the closure generically and
nothing inside it is detached: Hessian-vector products of an adapted objective include the
second-order terms. Where only values are needed (the line search), a caller may pass cheaper
closures of the same values (`trpo_step`'s `loss_value_fn`, `kl_value_fn`).

A non-finite loss, gradient or step is an error (`FloatingPointError` naming it), never a
silently rejected step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from metarl.backend.progress import SILENT, Progress

Params = dict[str, Tensor]
Objective = Callable[[Params], Tensor]
MatVec = Callable[[Tensor], Tensor]


def flat(tensors: Params | Sequence[Tensor]) -> Tensor:
    """Concatenate tensors (a dict's values, in order) into one 1D vector."""
    values = tensors.values() if isinstance(tensors, dict) else tensors
    return torch.cat([t.reshape(-1) for t in values])


def unflat(vector: Tensor, like: Params) -> Params:
    """Split a 1D vector into tensors named and shaped like `like`: the inverse of `flat`."""
    pieces = vector.split([t.numel() for t in like.values()])
    return {name: p.reshape(t.shape) for (name, t), p in zip(like.items(), pieces, strict=True)}


def check_finite(value: Tensor, what: str) -> Tensor:
    """`value`, or a `FloatingPointError` saying "`what` is nan" (inf, -inf; "is not finite" for
    a tensor of several elements) when any element of it is not finite."""
    if not bool(torch.isfinite(value).all()):
        shown = f"{value.item()}" if value.numel() == 1 else "not finite"
        raise FloatingPointError(f"{what} is {shown}")
    return value


def leaves(params: Params) -> Params:
    """Leaves that require grad at the values of `params`: derivatives are taken at this point,
    whatever history (or lack of `requires_grad`) the given tensors have."""
    return {name: t.detach().requires_grad_() for name, t in params.items()}


def conjugate_gradient(
    matvec: MatVec,
    b: Tensor,
    iterations: int = 10,
    residual_tol: float = 1e-10,
    progress: Progress = SILENT,
) -> Tensor:
    """Approximate solution x of A x = b for symmetric positive-definite A given as x ↦ A x.

    TRPO needs F⁻¹g without ever forming F. Stops early once the squared residual ‖b − Ax‖² is
    below `residual_tol`. Each product A·d is one step of `progress`.
    """
    x = torch.zeros_like(b)
    residual = b
    direction = b
    residual_sq = residual @ residual
    for _ in range(iterations):
        if residual_sq < residual_tol:
            break
        a_direction = matvec(direction)
        progress.advance()
        alpha = residual_sq / (direction @ a_direction)
        x = x + alpha * direction
        residual = residual - alpha * a_direction
        new_residual_sq = residual @ residual
        direction = residual + (new_residual_sq / residual_sq) * direction
        residual_sq = new_residual_sq
    return x


def hessian_operator(f: Objective, params: Params, damping: float = 0.0) -> MatVec:
    """The operator v ↦ (∇²f(params) + damping·I)·v on flat vectors, by double backprop: f and
    its gradient graph are built once and reused by every call (CG calls it once per iteration).

    TRPO's Fisher-vector product is this operator on `kl_fn` (mean KL(old ‖ params)): at
    params = old the KL's Hessian is the Fisher information matrix, so F is never formed.
    """
    inputs_by_name = leaves(params)
    inputs = list(inputs_by_name.values())
    grads = torch.autograd.grad(
        f(inputs_by_name), inputs, create_graph=True, materialize_grads=True
    )
    grad = flat(grads)

    def matvec(vector: Tensor) -> Tensor:
        product = torch.autograd.grad(
            grad @ vector.detach(), inputs, retain_graph=True, materialize_grads=True
        )
        return flat(product) + damping * vector

    return matvec


Metric = Callable[[tuple[Tensor, ...]], tuple[Tensor, ...]]
"""u ↦ M·u on a tuple of output tangents: the Hessian of the KL in the outputs, at the anchor."""


def gauss_newton_operator(
    outputs: Tensor | tuple[Tensor, ...], inputs: Params, metric: Metric, damping: float = 0.0
) -> MatVec:
    """The operator v ↦ (JᵀMJ + damping·I)·v on flat vectors, J the Jacobian of `outputs` (a
    policy's distribution parameters, computed from `inputs` with their graph) and M the KL's
    Hessian in those outputs at the anchor (`metric`, closed form: e.g. `DiagGaussian.
    fisher_product` weighted by the loss's averaging).

    At the anchor, where the outputs equal the old policy's, the KL's first derivative in the
    outputs is zero, so its Hessian in the inputs is exactly JᵀMJ (the Gauss-Newton form): the
    same products as `hessian_operator` on the KL, without differentiating the KL twice. When
    the outputs go through MAML's inner steps (a gradient inside), `hessian_operator` has to
    back-propagate through the gradient of a gradient of them; here every product is two
    passes through graphs built once: J·v by the transpose of the backward pass (`Jᵀu` is built
    with a graph once, linear in a dummy u, and differentiated in u), Jᵀ·w by the retained
    forward graph. The graph of `outputs` is kept for as long as the operator lives.
    """
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    inputs_list, names = list(inputs.values()), list(inputs)
    dummies = tuple(torch.zeros_like(o, requires_grad=True) for o in outputs)
    linear: list[tuple[int, Tensor]] = []  # (input index, Jᵀu for it) where it is not zero
    if any(o.requires_grad for o in outputs):
        transposed = torch.autograd.grad(
            [o for o in outputs if o.requires_grad],
            inputs_list,
            [u for o, u in zip(outputs, dummies, strict=True) if o.requires_grad],
            create_graph=True,
            allow_unused=True,
        )
        linear = [(i, t) for i, t in enumerate(transposed) if t is not None and t.requires_grad]
    used = [i for i, o in enumerate(outputs) if o.requires_grad]  # the outputs with a graph

    def jacobian_product(vector: Tensor) -> tuple[Tensor, ...]:
        pieces = unflat(vector.detach(), inputs)
        products = torch.autograd.grad(
            [t for _, t in linear],
            dummies,
            [pieces[names[i]] for i, _ in linear],
            retain_graph=True,
            allow_unused=True,
        )
        return tuple(
            torch.zeros_like(o) if p is None else p for o, p in zip(outputs, products, strict=True)
        )

    def matvec(vector: Tensor) -> Tensor:
        if not linear:  # the outputs do not depend on the inputs: J = 0
            return damping * vector
        weighted = metric(jacobian_product(vector))
        product = torch.autograd.grad(
            [outputs[i] for i in used],
            inputs_list,
            [weighted[i] for i in used],
            retain_graph=True,
            materialize_grads=True,
        )
        return flat(product) + damping * vector

    return matvec


class LineSearchResult(NamedTuple):
    """Outcome of `backtracking_line_search`."""

    params: Params
    """Accepted parameters, or the old ones (as fresh tensors) if no step was accepted."""
    accepted: bool
    step_fraction: float
    """Fraction of the full step taken; 0 when rejected."""
    loss: float
    kl: float
    """KL(old ‖ params); 0 when rejected."""


def _value(fn: Objective, at: Params) -> float:
    """fn(at) as a float. Autograd stays on because closures may differentiate internally
    (a MAML inner step needs the inner gradient even here, though not its graph: see
    `trpo_step`'s `loss_value_fn`); the graph is dropped at once."""
    return fn(at).item()


def backtracking_line_search(
    loss_fn: Objective,
    kl_fn: Objective,
    params: Params,
    full_step: Tensor,
    loss_before: float,
    max_kl: float,
    max_backtracks: int = 15,
    backtrack_ratio: float = 0.8,
    progress: Progress = SILENT,
) -> LineSearchResult:
    """First of params + ratioᵏ·full_step (k = 0, 1, ...) with a lower loss and KL ≤ max_kl.

    TRPO's safeguard for when the quadratic KL model or the linear loss model is wrong. A
    candidate whose loss or KL is not finite (an overflowing likelihood ratio far from the old
    policy) fails those tests and is rejected like any other. Both closures get the very same
    leaves of a candidate (the KL only once the loss improved), so that they may share work on
    it: MAML's inner step, for one. Each candidate is one step of `progress`.
    """
    start = flat(params).detach()
    for k in range(max_backtracks):
        fraction = backtrack_ratio**k
        candidate = unflat(start + fraction * full_step.detach(), params)
        at = leaves(candidate)
        loss = _value(loss_fn, at)
        progress.advance()
        if loss < loss_before:
            kl = _value(kl_fn, at)
            if kl <= max_kl:
                return LineSearchResult(candidate, True, fraction, loss, kl)
    return LineSearchResult(unflat(start, params), False, 0.0, loss_before, 0.0)


def trpo_step(
    loss_fn: Objective,
    kl_fn: Objective,
    params: Params,
    max_kl: float = 0.01,
    cg_iterations: int = 10,
    cg_damping: float = 1e-5,
    max_backtracks: int = 15,
    backtrack_ratio: float = 0.8,
    fisher_kl_fn: Objective | None = None,
    loss_value_fn: Objective | None = None,
    kl_value_fn: Objective | None = None,
    progress: Progress = SILENT,
) -> tuple[Params, dict[str, float | bool]]:
    """One TRPO update (Schulman et al. 2015) of closures: `trust_region_step` with the Fisher
    as `hessian_operator` of the KL. Returns fresh detached params and an info dict
    (loss_before, loss_after, kl, step_fraction, accepted); `params` is left untouched.

    fisher_kl_fn: the KL whose Hessian is F, when cheaper than `kl_fn` (e.g. on a subsample of
    the batch, as TRPO implementations often do); the line search always checks `kl_fn`.
    loss_value_fn, kl_value_fn: closures with the values of `loss_fn` and `kl_fn` that the line
    search evaluates instead, since it takes no derivative (MAML's inner steps without
    `create_graph`); by default `loss_fn` and `kl_fn` themselves. `loss_fn` is called once, for
    the loss and gradient at `params`, and `kl_fn` (or `fisher_kl_fn`) once, for the curvature.

    Raises `FloatingPointError` naming the surrogate loss, its gradient or the natural-gradient
    step when one of them is not finite at `params` (the caller knows which iteration)."""
    at = leaves(params)
    loss_before = check_finite(loss_fn(at), "surrogate loss")
    grad = torch.autograd.grad(loss_before, list(at.values()), materialize_grads=True)
    fisher = hessian_operator(fisher_kl_fn or kl_fn, params, cg_damping)
    return trust_region_step(
        loss_before.item(),
        flat(grad),
        at,
        fisher,
        loss_value_fn or loss_fn,
        kl_value_fn or kl_fn,
        max_kl=max_kl,
        cg_iterations=cg_iterations,
        max_backtracks=max_backtracks,
        backtrack_ratio=backtrack_ratio,
        progress=progress,
    )


def natural_gradient_step(
    grad: Tensor,
    fisher: MatVec,
    max_kl: float,
    cg_iterations: int = 10,
    progress: Progress = SILENT,
) -> Tensor:
    """TRPO's full step: the direction −F⁻¹g by `cg_iterations` of conjugate gradient, scaled
    so that ½ sᵀFs = max_kl (the quadratic model of the KL on the trust region's boundary).
    Reports the phase "conjugate gradient" (one step per Fisher product) to `progress`.
    Raises `FloatingPointError` when the step is not finite."""
    progress.phase("conjugate gradient", cg_iterations + 1)  # + the curvature's product
    direction = conjugate_gradient(fisher, -grad, cg_iterations, progress=progress)
    # The clamp turns a zero gradient (zero direction) into a zero step instead of 0·∞ = NaN.
    curvature = (direction @ fisher(direction)).clamp_min(torch.finfo(direction.dtype).tiny)
    progress.advance()
    full_step = direction * torch.sqrt(2.0 * max_kl / curvature)
    return check_finite(full_step, "natural-gradient step (the KL's curvature)")


def trust_region_step(
    loss: float,
    grad: Tensor,
    params: Params,
    fisher: MatVec,
    loss_fn: Objective,
    kl_fn: Objective,
    *,
    max_kl: float = 0.01,
    cg_iterations: int = 10,
    max_backtracks: int = 15,
    backtrack_ratio: float = 0.8,
    progress: Progress = SILENT,
) -> tuple[Params, dict[str, float | bool]]:
    """The TRPO step from its parts: the surrogate `loss` and its flat gradient `grad` at
    `params`; the natural-gradient step −F⁻¹g scaled so that ½ sᵀFs = max_kl; then the line
    search on the values of `loss_fn` and `kl_fn` (closures params -> scalar). `fisher` is F·v
    (damping included): `hessian_operator` or `gauss_newton_operator`. Returns fresh detached
    params and the info of `trpo_step`. `progress` sees the phases "conjugate gradient" and
    "line search" (one step per candidate).

    Raises `FloatingPointError` naming the gradient of the surrogate loss or the natural-gradient
    step when one of them is not finite."""
    check_finite(grad, "gradient of the surrogate loss")
    full_step = natural_gradient_step(grad, fisher, max_kl, cg_iterations, progress)
    progress.phase("line search", max_backtracks)
    result = backtracking_line_search(
        loss_fn, kl_fn, params, full_step, loss, max_kl, max_backtracks, backtrack_ratio, progress
    )
    info = {
        "loss_before": loss,
        "loss_after": result.loss,
        "kl": result.kl,
        "step_fraction": result.step_fraction,
        "accepted": result.accepted,
    }
    return result.params, info
