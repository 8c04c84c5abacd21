"""N:M semi-structured sparsity: in every group of M consecutive input weights, keep the N largest |w|.

2:4 is the pattern NVIDIA's sparse tensor cores (Ampere and newer) execute at up to twice the dense
math throughput (Mishra et al. 2021, "Accelerating Sparse Deep Neural Networks", arXiv:2104.08378);
``to_semi_structured_`` hands such weights to ``torch.sparse.to_sparse_semi_structured`` (cuSPARSELt /
CUTLASS) for inference.

Groups run along the last dimension (a Linear weight's input features, as the sparse kernels expect),
so that dimension must be a multiple of M. Within a group the M - N smallest |w| are pruned; among
equal |w| the lower position goes first (the library-wide tie rule, see ``magnitude``), so the
masks are deterministic and every group keeps exactly N.

Gradual N:M (``gradual_nm_masks``, ``SemiStructuredPruner``): a *fraction* of the groups is converted
to N:M, the rest stays dense, and the fraction ramps up on an ordinary schedule. Which groups first:
those whose would-be-pruned weights have the smallest summed |w| (the least magnitude lost), ranked
over all selected tensors (``global``) or within each tensor (``layerwise``), with the exact top-score
selection of ``magnitude`` (ties: lower position first). Conversion is monotone: a converted group
keeps the mask it got when it converted. A converted group is exactly (M - N)/M zeros, so the
achieved sparsity is (M - N)/M times the fraction of groups converted, and the schedule's targets are
sparsities between 0 and (M - N)/M (the latter: every group converted; one-shot gives that at once).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch

from sparsenlp.errors import SparseNLPError
from sparsenlp.pruning.methods.semi_structured import NMReport, TensorGroups
from sparsenlp.pruning.scheduled import SELECTORS, ScheduledPruner
from sparsenlp.pruning.schedules import Schedule


def check_nm(n: int, m: int) -> None:
    """N:M needs 1 <= N < M (integers)."""
    if isinstance(n, bool) or isinstance(m, bool) or not isinstance(n, int) or not isinstance(m, int) \
            or not 1 <= n < m:
        raise SparseNLPError(f"N:M sparsity needs integers 1 <= N < M, got {n}:{m}; use e.g. 2:4")


def nm_sparsity(n: int, m: int) -> float:
    """The sparsity of a fully converted tensor: (M - N) / M (0.5 for 2:4)."""
    check_nm(n, m)
    return (m - n) / m


def _groups(tensor: torch.Tensor, m: int, name: str = "tensor") -> torch.Tensor:
    """The tensor as rows of M consecutive elements along its last dimension."""
    if tensor.dim() == 0 or tensor.shape[-1] % m:
        raise SparseNLPError(
            f"{name} has shape {tuple(tensor.shape)}: its last dimension is not a multiple of M={m}; "
            f"leave it out of pruning.params or choose an M that divides {tensor.shape[-1] if tensor.dim() else 1}"
        )
    return tensor.detach().reshape(-1, m)


@torch.no_grad()
def _select_in_groups(weight: torch.Tensor, n: int, m: int, name: str = "tensor") -> tuple[torch.Tensor, torch.Tensor]:
    """(keep mask shaped (groups, M), cost per group = summed |w| of the M - N pruned elements).

    Each element's rank in its group's ascending (|w|, position) order comes from the M(M-1)/2 pairwise
    comparisons of whole columns: several times faster than a stable argsort along rows of 4 on a CPU,
    and exact."""
    groups = _groups(weight, m, name)
    columns = torch.empty((m, groups.shape[0]), dtype=torch.float32, device=groups.device)
    columns.copy_(groups.t()).abs_()  # |w| as fp32, transposed so each position is one contiguous column
    # rank[x] = elements ranked before x; for a pair i < j exactly one is first (on a tie i, the lower position)
    rank = torch.arange(m, dtype=torch.uint8, device=columns.device)[:, None].repeat(1, columns.shape[1])
    j_first = torch.empty(columns.shape[1], dtype=torch.uint8, device=columns.device)  # 0/1
    for i in range(m):
        for j in range(i + 1, m):
            torch.lt(columns[j], columns[i], out=j_first)
            rank[i] += j_first
            rank[j] -= j_first
    keep = torch.empty(groups.shape, dtype=torch.bool, device=columns.device)
    torch.ge(rank.t(), m - n, out=keep)
    return keep, columns.mul_(keep.t() == 0).sum(0)


def nm_masks(weight: torch.Tensor, n: int = 2, m: int = 4) -> torch.Tensor:
    """Keep-mask (True = kept, the weight's shape) with exactly N kept in every group of M."""
    check_nm(n, m)
    return _select_in_groups(weight, n, m)[0].view(weight.shape)


def is_nm_sparse(tensor: torch.Tensor, n: int = 2, m: int = 4) -> bool:
    """At most N non-zeros in every group of M consecutive elements along the last dimension."""
    check_nm(n, m)
    if tensor.dim() == 0 or tensor.shape[-1] % m:
        return False
    return bool((torch.count_nonzero(_groups(tensor, m), dim=1) <= n).all())


def converted_groups(mask: torch.Tensor, m: int) -> torch.Tensor:
    """Per group of a keep-mask: has it been converted (anything pruned in it)?"""
    return ~_groups(mask, m).all(dim=1)


@torch.no_grad()
def gradual_nm_masks(
    params: Mapping[str, torch.Tensor],
    n: int,
    m: int,
    fraction: float,
    prior: Mapping[str, torch.Tensor] | None = None,
    scope: str = "global",
) -> dict[str, torch.Tensor]:
    """Keep-masks with ``round(fraction * groups)`` groups converted to N:M (over all tensors for
    ``global``, per tensor for ``layerwise``), the cheapest first; groups converted in ``prior`` stay
    converted with their prior mask (monotone), and the rest of the budget is taken from the others."""
    check_nm(n, m)
    if scope not in SELECTORS:
        raise SparseNLPError(f"N:M scope {scope!r} is unknown; use one of {list(SELECTORS)}")
    selections = {name: _select_in_groups(p, n, m, name) for name, p in params.items()}
    costs = {name: cost for name, (_, cost) in selections.items()}
    before = {name: converted_groups(prior[name], m) for name in params} if prior is not None else None
    # selection prunes the lowest scores: "pruned" groups are the converted ones; converted before = pruned before
    dense_after = SELECTORS[scope](costs, fraction, None if before is None else {k: ~v for k, v in before.items()},
                                   scores=costs)
    masks = {}
    for name, p in params.items():
        keep = selections[name][0]
        newly = ~dense_after[name].to(keep.device)
        if before is None:
            mask = keep | ~newly[:, None]
        else:
            newly &= ~before[name].to(keep.device)
            mask = torch.where(newly[:, None], keep, _groups(prior[name], m).to(device=keep.device, dtype=torch.bool))
        masks[name] = mask.view(p.shape)
    return masks


class SemiStructuredPruner(ScheduledPruner):
    """Gradual (or one-shot) N:M pruning on a resolved schedule, kept by the same ``MaskSet``.

    The schedule's target is the sparsity of the selected weights: at most (M - N)/M, reached when every
    group is converted (``schedule.final_sparsity = nm_sparsity(n, m)`` converts them all). ``method``
    is the scope of the conversion order (``global`` or ``layerwise``). Masks are always monotone.
    """

    criterion = "magnitude"  # the N largest |w| of each group stay

    def __init__(
        self,
        model: torch.nn.Module,
        method: str,
        params: Mapping[str, torch.nn.Parameter] | Sequence[str] | None,
        schedule: Schedule,
        n: int = 2,
        m: int = 4,
        embedding_schedule: Schedule | None = None,
    ) -> None:
        check_nm(n, m)
        super().__init__(model, method, params, schedule, monotone=True, embedding_schedule=embedding_schedule)
        self.n, self.m = n, m
        self.full = nm_sparsity(n, m)
        for name, p in self.masks.params.items():
            _groups(p, m, name)
        for _, group_schedule in self.groups.values():
            if group_schedule.final_sparsity > self.full:
                raise SparseNLPError(
                    f"{n}:{m} sparsity is at most {self.full:g} (every group converted) but the schedule asks for "
                    f"{group_schedule.final_sparsity:g}; set pruning.sparsity (and pruning.embedding_sparsity) "
                    f"<= {self.full:g}"
                )

    def select(self, params: Mapping[str, torch.nn.Parameter], target: float,
               prior: Mapping[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        fraction = min(1.0, target / self.full)
        return gradual_nm_masks(params, self.n, self.m, fraction, prior, self.scope)

    def _converted(self) -> dict[str, int]:
        return {name: int(converted_groups(mask, self.m).sum()) for name, mask in self.masks.masks.items()}

    def details(self) -> NMReport:
        per_tensor = self._converted()
        converted = sum(per_tensor.values())
        groups = self.masks.num_prunable // self.m
        pruned = sum(self.masks.pruned_counts().values())
        return NMReport(
            n=self.n, m=self.m, groups=groups, converted_groups=converted, converted_fraction=converted / groups,
            converted_group_sparsity=pruned / (converted * self.m) if converted else None,
            per_tensor={name: TensorGroups(groups=self.masks.masks[name].numel() // self.m, converted_groups=count)
                        for name, count in per_tensor.items()},
        )


# --- inference on sparse tensor cores ------------------------------------------------------------------

SEMI_STRUCTURED_DTYPES = (torch.float16, torch.bfloat16)


def semi_structured_available(device: torch.device | str = "cuda") -> tuple[bool, str]:
    """(usable, why not): 2:4 kernels need a CUDA GPU of compute capability 8.0 (Ampere) or newer."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return False, "needs a CUDA GPU (Ampere or newer)"
    major, minor = torch.cuda.get_device_capability(device)
    if major < 8:
        return False, f"needs compute capability >= 8.0, this GPU has {major}.{minor}"
    return True, ""


@torch.no_grad()
def to_semi_structured_(model: torch.nn.Module, names: Iterable[str]) -> list[str]:
    """Replace the named Linear weights (parameter names, e.g. a pruner's ``masks.params``) by
    ``torch.sparse.to_sparse_semi_structured`` tensors, in place; for inference only (no gradients).

    Every named weight must be a 2:4-sparse fp16/bf16 ``nn.Linear`` weight on a GPU that supports it
    (cast with ``model.half()`` after pruning; pruned zeros stay zeros).
    """
    from torch.sparse import to_sparse_semi_structured

    modules = dict(model.named_modules())
    converted = []
    for name in names:
        module_name, _, attribute = name.rpartition(".")
        module = modules.get(module_name)
        if attribute != "weight" or not isinstance(module, torch.nn.Linear):
            raise SparseNLPError(f"{name} is not an nn.Linear weight; only Linear layers run on 2:4 sparse kernels")
        weight = module.weight
        usable, why = semi_structured_available(weight.device)
        if not usable:
            raise SparseNLPError(f"semi-structured sparse inference {why}; {name} is on {weight.device}")
        if weight.dtype not in SEMI_STRUCTURED_DTYPES:
            raise SparseNLPError(f"{name} is {weight.dtype}; 2:4 kernels take fp16/bf16: call model.half() first")
        if not is_nm_sparse(weight, 2, 4):
            raise SparseNLPError(f"{name} is not 2:4 sparse; prune it with N:M 2:4 (every group converted) first")
        try:
            sparse = to_sparse_semi_structured(weight.detach())
        except RuntimeError as exc:  # shape constraints of the kernels
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise SparseNLPError(f"{name} cannot be made semi-structured ({reason})") from None
        module.weight = torch.nn.Parameter(sparse, requires_grad=False)
        converted.append(name)
    return converted
