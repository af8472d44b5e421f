"""Bad teaching: distil a competent teacher on retain and an incompetent one on forget.

Reference: Chundawat, Tarun, Mandal and Kankanhalli, "Can Bad Teaching Induce
Forgetting? Unlearning in Deep Networks Using an Incompetent Teacher", AAAI 2023. The
student (the model itself) starts from the original; the competent teacher is a frozen
copy of the original, the incompetent teacher a model of the same architecture with
fresh random weights. Each step, the student matches (KL divergence at
``temperature``) the competent teacher on retain examples and the incompetent one on
forget examples, so that it keeps what it knows and unlearns the forget set towards
the outputs of a network that never learnt anything.

The paper distils for one epoch over the forget set and a 30% sample of retain; here
one pass over retain carries the forget set spread over its batches, as ``neggrad_plus``
does, which fits the kit's time limit with room to spare.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from starter_kit.baselines._common import (
    budget_steps,
    check_inputs,
    distillation_kl,
    frozen_copy,
    sgd_cosine,
    take,
    training_recipe,
    with_forget_slices,
)
from starter_kit.baselines._registry import register
from starter_kit.recipe import Recipe


@register("bad_teacher", "competent and incompetent teachers", "Chundawat et al., AAAI 2023")
def bad_teacher(
    net: nn.Module,
    retain_loader: DataLoader,
    forget_loader: DataLoader,
    val_loader: DataLoader,
    epoch_share: float = 1 / 16,
    lr_scale: float = 0.2,
    temperature: float = 1.0,
    recipe: Recipe | None = None,
) -> nn.Module:
    """Distil the original on retain and a random network on forget for ``epochs``; in place, eval mode.

    The incompetent teacher's weights come from torch's global generator (seeded by the
    scorer). Paper: Chundawat, Tarun, Mandal and Kankanhalli, "Can Bad Teaching Induce
    Forgetting? Unlearning in Deep Networks Using an Incompetent Teacher", AAAI 2023.
    """
    device = check_inputs(net, retain_loader, forget_loader, val_loader, epoch_share, lr_scale)
    recipe = training_recipe(retain_loader, recipe)
    steps = budget_steps(recipe, retain_loader, epoch_share)
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    competent = frozen_copy(net)
    incompetent = random_copy(net)
    optimizer, scheduler = sgd_cosine(net, recipe, lr_scale, steps)
    passes = lambda: with_forget_slices(retain_loader, forget_loader, device)  # noqa: E731
    net.train()
    for inputs, _, forget_inputs, _ in take(passes, steps):
        logits = net(torch.cat([inputs, forget_inputs]))  # one pass: BatchNorm sees both
        with torch.no_grad():
            targets = competent(inputs)
            if len(forget_inputs):
                targets = torch.cat([targets, incompetent(forget_inputs)])
        loss = distillation_kl(logits, targets, temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    return net.eval()


@torch.no_grad()
def random_copy(net: nn.Module) -> nn.Module:
    """A frozen copy of ``net`` with every layer re-initialised (``reset_parameters``), in eval mode."""
    teacher = frozen_copy(net)
    for module in teacher.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
    return teacher
