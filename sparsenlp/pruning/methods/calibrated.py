"""One-shot pruning of the fine-tuned dense model from calibration data: Wanda and SparseGPT.

Wanda (Sun, Liu, Bair & Kolter 2023, "A Simple and Effective Pruning Approach for Large Language Models")
scores |W| * ||X|| and compares the weights of each output row; SparseGPT (Frantar & Alistarh 2023, "Massive
Language Models Can Be Accurately Pruned in One-Shot") prunes column block by column block with optimal-brain-
surgeon updates from the inverse Hessian of the layer inputs. Both run after fine-tuning, on the dense run of the
same language and seed (reused through ``trainer.model_store``, never retrained when it is there), layer by layer
(``sparsenlp/pruning/calibration.py``), optionally followed by a short recovery fine-tune with the masks fixed.

``calibration.lang`` is a factor of the design: ``self`` (the evaluated language), a code (``en``), ``mix`` (an
equal share of every language of the study, ``lang=all``) or ``none`` (no data: the same per-row magnitude ranking, the control
that says what the data adds); the sentences come from training splits only (``sparsenlp/data/calibration.py``).
The arm names it (``Arm.calibration``), so no comparison pools calibration languages.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, List, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from sparsenlp.errors import SparseNLPError
from sparsenlp.options import Free, Pattern, Range, at_least, option
from sparsenlp.pruning.methods.base import (
    NO_SCHEDULE,
    PARAMS,
    Context,
    Method,
    PruningConfig,
    method_name,
)

SELF, MIX, NONE = "self", "mix", "none"
TARGET = Pattern(r"(0?\.\d+|0|[1-9]\d*:[1-9]\d*)", "0.5 or 2:4")
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


@dataclass
class CalibrationConfig:
    """Whose data calibrates the pruning, and how much of it."""

    lang: str = option(SELF, "self (the evaluated language), a language code (en), mix (an equal share of every "
                       "language of the study that has training data) or none (no data: the magnitude control)",
                       Pattern(r"self|mix|none|[a-z]{2,3}", "self, mix, none or en"))
    sentences: int = option(128, "calibration sentences, drawn from training data only (both papers use 128)",
                            at_least(1))


@dataclass
class CalibratedConfig(PruningConfig):
    """Keys of the one-shot methods that prune the fine-tuned dense model from calibration data."""

    target: str = option("0.5", "a sparsity (0.5: half of every comparison group) or an N:M pattern (2:4: N kept "
                         "of every M consecutive inputs); 0 is the dense arm", TARGET)
    params: Optional[List[str]] = option(None, "regexes over parameter names; null: the encoder's attention and FFN "
                                         "Linear weights (the same selection as every other method)", PARAMS)
    calibration: CalibrationConfig = option(help="whose data calibrates the pruning",
                                            check=Free("checked key by key"), factory=CalibrationConfig, nested=True)
    recovery_steps: int = option(0, "optimizer steps of fine-tuning after pruning, masks fixed (0: none)",
                                 at_least(0))

    def check(self, path: str) -> None:
        nm = self.nm()
        if nm and not nm[0] < nm[1]:
            raise SparseNLPError(f"{path}target={self.target} keeps N of every M weights: N must be below M, e.g. 2:4")

    def nm(self) -> Optional[tuple[int, int]]:
        """(N, M) for an N:M target, else None."""
        if ":" not in self.target:
            return None
        n, m = (int(part) for part in self.target.split(":"))
        return n, m

    def sparsity(self) -> float:
        nm = self.nm()
        return (nm[1] - nm[0]) / nm[1] if nm else float(self.target)


@dataclass
class WandaConfig(CalibratedConfig):
    method: str = method_name("wanda")


@dataclass
class SparseGPTConfig(CalibratedConfig):
    method: str = method_name("sparsegpt")
    blocksize: int = option(128, "columns per block (the reference's 128): masks are chosen within each block",
                            at_least(1))
    percdamp: float = option(0.01, "dampening added to the Hessian's diagonal, a share of its mean (reference: "
                             "0.01)", Range(0.0, 1.0, open_low=True))


# ---------------------------------------------------------------------------------------------- report
class _Report(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OneShotTensor(_Report):
    numel: int = Field(ge=1)
    pruned: int = Field(ge=0)
    achieved: Fraction


class OneShotSeconds(_Report):
    """Wall time of each phase (CUDA synchronised at the phase boundaries)."""

    capture: float = Field(description="embeddings up to the first encoder layer's inputs, every batch")
    statistics: float = Field(description="dense forwards of each layer with the statistics hooks")
    prune: float = Field(description="scores, masks and (SparseGPT) weight updates")
    propagate: float = Field(description="pruned forwards of each layer: the next layer's inputs")
    total: float


class OneShotReport(_Report):
    """What one-shot pruning did; the calibration data itself is described by ``CalibrationInfo``."""

    method: Literal["magnitude", "wanda", "sparsegpt"]
    structure: Optional[str] = Field(description="'2:4' for N:M, null when unstructured")
    target: Fraction = Field(description="share of each comparison group pruned: the sparsity, or (M-N)/M")
    comparison_group: str = Field(description="where weights compete: output row, SparseGPT block, N:M group")
    achieved: Fraction = Field(description="share of the prunable weights pruned by mask")
    prunable_parameters: int = Field(ge=1)
    pruned_parameters: int = Field(ge=0)
    layers: int = Field(ge=1, description="encoder layers with prunable weights")
    calibration_sequences: int = Field(ge=0, description="windows the statistics were taken on (0: magnitude)")
    calibration_tokens: int = Field(ge=0, description="their non-padding positions")
    blocksize: Optional[int] = Field(default=None, description="SparseGPT: columns per block")
    percdamp: Optional[float] = Field(default=None, description="SparseGPT: dampening, share of mean(diag H)")
    dtype: str = Field(description="floating-point type of the statistics and SparseGPT's updates")
    device: str
    seconds: OneShotSeconds
    per_tensor: dict[str, OneShotTensor]


class CalibrationInfo(_Report):
    """Which data calibrated a one-shot pruning."""

    lang: str = Field(description="as configured: self, mix, none or a language code")
    langs: list[str] = Field(description="the languages the sentences were drawn from (none: empty)")
    requested: int = Field(ge=0, description="calibration.sentences (0 for none)")
    sentences: int = Field(ge=0, description="sentences drawn: fewer than requested when a language ran short")
    per_lang: dict[str, int] = Field(description="sentences drawn per language")
    available: dict[str, int] = Field(description="training sentences each language had to draw from")
    seed: int
    sha256: Optional[str] = Field(description="of the tokens of the sentences drawn, in order; null for none")


class DenseSource(_Report):
    """The fine-tuned dense model that was pruned: the dense arm's own run, reused or trained here once."""

    identity: str = Field(description="config hash of the dense run (sparsenlp/identity.py)")
    reused: bool = Field(description="loaded from trainer.model_store (else trained in this job)")
    store: Optional[str] = Field(description="trainer.model_store (null: no store, trained here)")


class RecoveryInfo(_Report):
    """The recovery fine-tune after pruning (``pruning.recovery_steps``, masks fixed): what it trained and the
    dev F1 of the model kept (its final one). The record's ``training`` section is the dense fine-tune's."""

    steps: int = Field(ge=1)
    train_seconds: float = Field(ge=0)
    dev_f1: Optional[float]
    history: List[dict[str, Any]] = Field(description="training loss entries, as in the training section")
    dev_history: List[dict[str, Any]] = Field(description="dev evaluations, as in the training section")


class CalibratedReport(_Report):
    """The one-shot methods' section of the record (``pruning.details``)."""

    one_shot: OneShotReport
    calibration: CalibrationInfo
    dense: DenseSource
    recovery_steps: int = Field(ge=0)
    recovery: Optional[RecoveryInfo] = None


class Calibrated(Method):
    """A one-shot method run on the fine-tuned dense model (``post_training``)."""

    schedules: ClassVar[tuple[str, ...]] = (NO_SCHEDULE,)
    implementation: ClassVar[Any] = "sparsenlp.training.post_training:OneShotPruner"
    report: ClassVar[Optional[type[BaseModel]]] = CalibratedReport
    post_training: ClassVar[bool] = True
    comparison_group: ClassVar[str] = "row"

    def is_dense(self, cfg: PruningConfig) -> bool:
        return cfg.sparsity() == 0.0

    def criterion(self, cfg: PruningConfig) -> str:
        """The one-shot criterion; ``calibration.lang=none`` is the data-free magnitude control."""
        return "magnitude" if cfg.calibration.lang == NONE else str(self.implied_criterion)

    def scope(self, cfg: PruningConfig) -> str:
        return "group" if cfg.nm() else self.comparison_group

    def structure(self, cfg: PruningConfig) -> Optional[str]:
        return cfg.target if cfg.nm() else None

    def sparsity(self, cfg: PruningConfig, model_config: Any) -> float:
        return cfg.sparsity()

    def calibration(self, cfg: PruningConfig) -> Optional[str]:
        return cfg.calibration.lang

    def recovery_steps(self, cfg: PruningConfig) -> int:
        return cfg.recovery_steps

    def check_languages(self, cfg: PruningConfig, train_langs: Sequence[str], eval_langs: Sequence[str],
                        known: Collection[str]) -> None:
        """Calibration languages this run can draw from."""
        lang = cfg.calibration.lang
        if lang == SELF and len(eval_langs) > 1:
            raise SparseNLPError("pruning.calibration.lang=self prunes one model per evaluated language, but this run "
                                 f"scores {len(eval_langs)}; run one language (lang=<code>) or calibrate with "
                                 "pruning.calibration.lang=mix or a language code")
        if lang not in (SELF, NONE, MIX) and lang not in known:
            raise SparseNLPError(f"pruning.calibration.lang={lang} is not a language of `languages`; use self, mix, "
                                 "none or one of its codes")

    def build(self, cfg: PruningConfig, context: Context) -> Any:
        return self.pruner_class()(self, cfg, context)


class Wanda(Calibrated):
    name: ClassVar[str] = "wanda"
    summary: ClassVar[str] = ("Wanda (Sun et al. 2023): |W| x input norm per output row, one shot after fine-tuning "
                              "from calibration data (calibration.lang)")
    config: ClassVar[type[PruningConfig]] = WandaConfig
    comparison_group: ClassVar[str] = "row"
    implied_criterion: ClassVar[str] = "wanda"


class SparseGPT(Calibrated):
    name: ClassVar[str] = "sparsegpt"
    summary: ClassVar[str] = ("SparseGPT (Frantar & Alistarh 2023): OBS updates from the inputs' inverse Hessian, one "
                              "shot after fine-tuning from calibration data (calibration.lang)")
    config: ClassVar[type[PruningConfig]] = SparseGPTConfig
    comparison_group: ClassVar[str] = "block"
    implied_criterion: ClassVar[str] = "sparsegpt"


WANDA = Wanda()
SPARSEGPT = SparseGPT()
