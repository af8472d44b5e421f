"""Classic unlearning methods, each with the submission's signature, chosen by name.

Every baseline is ``f(net, retain_loader, forget_loader, val_loader, **hyper) -> net``:
it changes ``net`` in place on the device of its parameters and returns it in eval
mode. Their defaults take about 7% of retraining's time on digits, well inside the
kit's limit of 20%.

To add a baseline:
1. write ``starter_kit/baselines/my_method.py`` with one function of that signature
   (hyper-parameters as keyword arguments with defaults; a docstring citing the source);
2. add one line to ``BASELINES`` below;
3. run ``pytest tests/test_baselines.py``: every registered baseline is checked.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from starter_kit.baselines.bad_teacher import bad_teacher
from starter_kit.baselines.erase_repair import erase_repair
from starter_kit.baselines.finetune import finetune
from starter_kit.baselines.l1_sparse import l1_sparse
from starter_kit.baselines.neggrad_plus import neggrad_plus
from starter_kit.baselines.random_labels import random_labels
from starter_kit.baselines.random_mask import random_mask
from starter_kit.baselines.reinit_distill import reinit_distill
from starter_kit.baselines.salun import salun
from starter_kit.baselines.scrub import scrub
from starter_kit.baselines.ssd import ssd

Unlearning = Callable[..., nn.Module]

BASELINES: dict[str, Unlearning] = {
    "finetune": finetune,
    "neggrad_plus": neggrad_plus,
    "random_labels": random_labels,
    "erase_repair": erase_repair,
    "scrub": scrub,
    "salun": salun,
    "ssd": ssd,
    "l1_sparse": l1_sparse,
    "bad_teacher": bad_teacher,
    "reinit_distill": reinit_distill,
    "random_mask": random_mask,
}


def get_baseline(name: str) -> Unlearning:
    """The baseline registered under ``name``."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}: choose one of {', '.join(BASELINES)}")
    return BASELINES[name]


__all__ = ["BASELINES", "get_baseline", *BASELINES]
