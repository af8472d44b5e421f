"""Unlearning methods from the literature and the NeurIPS 2023 challenge, chosen by name.

Every baseline is ``f(net, retain_loader, forget_loader, val_loader, **hyper) -> net``:
it changes ``net`` in place on the device of its parameters and returns it in eval
mode. Each lives in its own module of this package, names its source, and files
itself into ``BASELINES`` with one line above its function::

    @register("finetune", "fine-tune on retain", "NeurIPS 2023 starting kit")
    def finetune(net, retain_loader, forget_loader, val_loader, ...): ...

Importing the package imports every module of this folder whose name does not start
with ``_``, in alphabetical order, and ``BASELINES`` lists the names alphabetically
whatever order they registered in. Each function is also an attribute of the package
(``from starter_kit.baselines import scrub``). The table of names, methods and sources
is at the end of this text, generated from the ``@register`` lines.

The official score (the documentation's baselines page gives its 95% intervals) of each baseline with
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
2. put ``@register("my_method", "what it does", "its source")`` on the line above it
   (``from starter_kit.baselines import register``): nothing else to edit;
3. run ``pytest tests/test_baselines.py tests/test_baselines_cifar.py``: every registered
   baseline is checked, on digits and on a small CIFAR-shaped split.
"""

from __future__ import annotations

import importlib
import pkgutil

from starter_kit.baselines._registry import (
    BASELINES,
    DESCRIPTIONS,
    Description,
    Unlearning,
    methods_table,
    register,
    sort_by_name,
)

for _module in sorted(pkgutil.iter_modules(__path__), key=lambda module: module.name):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
sort_by_name()
# Importing ``finetune.py`` bound the package's attribute ``finetune`` to that module:
# each name now means its function, as ``from starter_kit.baselines import finetune`` expects.
globals().update(BASELINES)
__doc__ = f"{__doc__}\nThe registered baselines:\n\n{methods_table()}\n"


def get_baseline(name: str) -> Unlearning:
    """The baseline registered under ``name``.

    Parameters
    ----------
    name : str
        One of ``BASELINES`` (e.g. ``"scrub"``).

    Returns
    -------
    unlearning : callable
        ``f(net, retain_loader, forget_loader, val_loader, **hyper) -> net``, a submission as it is.

    Raises
    ------
    ValueError
        For an unknown name, listing the registered ones.
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}: choose one of {', '.join(BASELINES)}")
    return BASELINES[name]


__all__ = ["BASELINES", "DESCRIPTIONS", "Description", "Unlearning", "get_baseline", "register", *BASELINES]
