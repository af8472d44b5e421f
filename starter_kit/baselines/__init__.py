"""Unlearning methods from the literature and the NeurIPS 2023 challenge, chosen by name.

Every baseline is ``f(net, retain_loader, forget_loader, val_loader, **hyper) -> net``:
it changes ``net`` in place on the device of its parameters and returns it in eval
mode. Each module names its source.

    name            method                                        source
    finetune        fine-tune on retain                           NeurIPS 2023 starting kit
    neggrad_plus    descent on retain, ascent on forget           Kurmanji et al., NeurIPS 2023
    random_labels   forget relabelled at random, with retain      Graves et al., AAAI 2021
    erase_repair    reset head, shrink-perturb, fine-tune         NeurIPS 2023 challenge entries
    scrub           student-teacher min-max                       Kurmanji et al., NeurIPS 2023
    salun           random labels through a saliency mask         Fan et al., ICLR 2024
    ssd             selective synaptic dampening, no training     Foster et al., AAAI 2024
    l1_sparse       fine-tune with a fading l1 penalty            Jia et al., NeurIPS 2023
    bad_teacher     competent and incompetent teachers            Chundawat et al., AAAI 2023
    reinit_distill  reset layers, distil on noisy retain          NeurIPS 2023 challenge entries
    random_mask     zero random weights, fine-tune                NeurIPS 2023 challenge entry

The official score (README's zoo table gives its 95% intervals) of each baseline with
its defaults and of the sanity rows, as ``python -m scoring benchmark`` measured it on
the public digits split, at N=32 and N=128 (regenerated from the benchmark's output by
``benchmarks/zoo_table.py``, never typed by hand):

    name            N=32   N=128
    retrain         0.189  0.185
    reinit_distill  0.083  0.053
    scrub           0.083  0.046
    bad_teacher     0.043  0.019
    salun           0.046  0.019
    random_labels   0.037  0.019
    erase_repair    0.048  0.015
    ssd             0.035  0.014
    random_mask     0.026  0.010
    finetune        0.015  0.002
    neggrad_plus    0.015  0.002
    l1_sparse       0.015  0.002
    noise           0.015  0.002
    identity        0.000  0.000

Scores at N=32 run high; N=128 separates the methods better. The defaults are
fractions of the split's recipe (a sixteenth of its epochs, a multiple of its rate;
see ``_common``), so that one set of defaults is meant for digits and CIFAR-10 alike
and takes the same share of retraining's time on both (not yet measured on CIFAR-10).

To add a baseline:
1. write ``starter_kit/baselines/my_method.py`` with one function of that signature
   (hyper-parameters as keyword arguments with defaults; a docstring citing the source);
2. add one line to ``BASELINES`` below;
3. run ``pytest tests/test_baselines.py tests/test_baselines_cifar.py``: every registered
   baseline is checked, on digits and on a small CIFAR-shaped split.
"""

from __future__ import annotations

from collections.abc import Callable

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
