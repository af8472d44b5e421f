"""Where the fast path's training time goes on the GPU: one epoch under torch.profiler, by kind of kernel.

Issue 14's open question. With the whole step in a CUDA graph, compiled, and four models
trained together, the cifar10 recipe took 0.688 s per model-epoch on an H100 against a
target of 0.6, and more streams stopped helping: the card is busy. Busy with what? The
convolutions (where cuDNN's algorithm choice or max-autotune's Triton templates decide),
or the memory-bound work between them (BatchNorm statistics, normalise + ReLU + residual
add, casts, the SGD update), which only fewer passes over the activations can cut? This
script answers it in one run:

1. trains the models once on two batches (compiles and captures, as every process does);
2. profiles one epoch of ``--images`` images, all models together, exactly as
   ``starter_kit.fast_training.train_fast_many`` trains them (CUDA-graph replays included:
   CUPTI reports each kernel of a replayed graph);
3. sorts every kernel into a kind by its name (cuDNN, cuBLAS, inductor's Triton kernels,
   torch's own) and prints, per kind, GPU seconds per model-epoch of 50,000 images, the
   share of all kernel time and kernels per step; then the busiest kernels, how much of
   the wall time the GPU was busy, how many kernels ran at once, and the convolutions'
   arithmetic rate beside a large bf16 matmul's on the same card (what the tensor cores
   give here).

Kernel time per model-epoch adds up to more than the wall time when models' kernels
overlap; the busy fraction and the overlap say by how much.

    python benchmarks/gpu_step_profile.py                                   # 4 models, compiled (a few minutes)
    python benchmarks/gpu_step_profile.py --models 1 --compile none --trace step.json   # open in ui.perfetto.dev
    python benchmarks/gpu_step_profile.py --device cpu --model resnet_digits --images 512 --models 1   # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

RECIPE_DATASET = "cifar10"
MEASURED = "profiled epoch"  # the record_function around the epoch that is counted
EPOCH_IMAGES = 50_000  # seconds are scaled to a CIFAR-10 epoch, the unit of issue 14's target

# (kind, pattern over the lower-cased kernel or operator name), first match wins.
# Inductor names its kernels triton_{poi,red,per,tem}_fused_<the ops it fused>, which may
# include "convolution_backward", so those come first. cuDNN names its convolution kernels
# by pass: fprop (forward), dgrad (gradient of the input), wgrad (gradient of the weights).
KINDS: list[tuple[str, str]] = [
    ("memcpy / memset", r"^memcpy|^memset"),
    ("inductor: reduction (BatchNorm statistics and gradients)", r"^triton_(red|per)_"),
    ("inductor: pointwise (normalise, ReLU, add, casts)", r"^triton_poi_"),
    ("inductor: template (max-autotune convolutions, GEMMs)", r"^triton_tem_"),
    ("inductor: other Triton", r"^triton_"),
    ("CPU autograd engine", r"^autograd::"),
    ("convolution: weight gradient", r"wgrad|bwd_filter|backward_weight|filter_grad"),
    ("convolution: input gradient", r"dgrad|bwd_data|backward_input|backward_data"),
    ("convolution: split-K reductions", r"splitk|split_k"),
    ("convolution: backward (CPU, both)", r"^aten::(mkldnn_)?convolution_backward"),
    ("convolution: forward", r"fprop|convolve|conv2d|convolution|winograd|nhwckrsc"),
    (
        "GEMM (classifier; cuDNN may run 1x1 convolutions as GEMMs)",
        r"gemm|nvjet|cublas|cutlass|xmma|matmul|^aten::(mm|addmm|linear)$",
    ),
    ("batch norm (eager)", r"batch_norm|batchnorm|bn_fw|bn_bw|welford"),
    ("SGD update (foreach)", r"multi_tensor_apply|foreach"),
    (
        "shuffle, flip + crop (gather, random)",
        r"index_elementwise|index_kernel|^aten::index$|gather|randperm|radix|philox|distribution|^aten::(rand|randint|arange)",
    ),
    ("layout changes and casts", r"nchwtonhwc|nhwctonchw|transpose|permute|copy|convert|cast"),
    (
        "eager pointwise and reductions",
        r"elementwise|vectorized|unrolled|reduce_kernel|^aten::(add|mul|sub|div|relu|threshold|clamp|sum|mean)",
    ),
]
_KIND_PATTERNS = [(kind, re.compile(pattern)) for kind, pattern in KINDS]
OTHER = "other"


def kind_of(name: str) -> str:
    """The kind of a kernel (or, on the CPU, an operator) from its name; ``OTHER`` if none fits."""
    lowered = name.lower()
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(lowered):
            return kind
    return OTHER


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (a smoke test of this script)")
    parser.add_argument(
        "--images", type=int, default=10_240, help="images in the profiled epoch (default 10,240: 40 steps)"
    )
    parser.add_argument(
        "--models", type=int, default=4, help="models trained together, as `references --models-together` (default 4)"
    )
    parser.add_argument(
        "--compile",
        default="default",
        help="torch.compile mode inside the graph: default, max-autotune-no-cudagraphs, or none",
    )
    parser.add_argument(
        "--no-graph", action="store_true", help="no CUDA graph: eager launches (kernel names stay the same)"
    )
    parser.add_argument(
        "--fused-sgd", action="store_true", help="the SGD update as one fused kernel (FastOptions.fused_sgd)"
    )
    parser.add_argument("--model", default=None, help="override the recipe's model (default resnet18_cifar)")
    parser.add_argument("--top", type=int, default=15, help="how many of the busiest kernels to list (default 15)")
    parser.add_argument("--trace", default=None, help="also write the Chrome trace here (open it in ui.perfetto.dev)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.models < 1 or args.top < 0:
        parser.error("--models must be at least 1 and --top at least 0")
    args.compile = None if args.compile.lower() == "none" else args.compile
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print(
            f"error: --device {args.device} but torch sees no CUDA device: this benchmark profiles GPU training; "
            "run it on a GPU machine, or use --device cpu --model resnet_digits --images 512 --models 1 "
            "for a smoke test",
            file=sys.stderr,
        )
        return 2
    from dataclasses import replace

    from starter_kit.data import make_synthetic_cifar10
    from starter_kit.fast_training import COMPILE_MODES, FastOptions, forget_trainers, train_fast_many
    from starter_kit.recipe import default_recipe

    if args.compile is not None and args.compile not in COMPILE_MODES:
        print(
            f"error: unknown --compile {args.compile!r}: choose one of {', '.join(COMPILE_MODES)} or none",
            file=sys.stderr,
        )
        return 2
    recipe = default_recipe(RECIPE_DATASET).with_epochs(1)
    if args.model:
        recipe = replace(recipe, model=args.model)
    if args.images < 2 * recipe.batch_size:
        print(
            f"error: --images {args.images} is under two batches of {recipe.batch_size}: profile at least "
            f"{2 * recipe.batch_size} images",
            file=sys.stderr,
        )
        return 2
    if not cuda:
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    data = make_synthetic_cifar10(args.images, 20, seed=args.seed)
    images, labels = data.images[: args.images], data.labels[: args.images]
    options = FastOptions(compile=args.compile, cuda_graph=False if args.no_graph else None, fused_sgd=args.fused_sgd)
    seeds = [args.seed + k for k in range(args.models)]
    card = torch.cuda.get_device_name(args.device) if cuda else "CPU"
    steps = args.images // recipe.batch_size
    print(
        f"{card}, torch {torch.__version__}: {recipe.model}, batch {recipe.batch_size}, "
        f"{args.models} model(s) together, "
        f"compile {args.compile or 'none'}, {'no graph' if args.no_graph else 'CUDA graph on CUDA'}, "
        f"{'fused' if args.fused_sgd else 'foreach'} SGD; "
        f"profiling one epoch of {steps} steps",
        flush=True,
    )

    forget_trainers()
    warm = slice(0, 2 * recipe.batch_size)
    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
    with tempfile.TemporaryDirectory() as scratch:
        trace_path = Path(args.trace) if args.trace else Path(scratch) / "trace.json"
        # One session from before the capture: CUPTI attached only after a graph was
        # captured may see none of its replayed kernels. Only the epoch is counted.
        with torch.profiler.profile(activities=activities) as profiler:
            started = time.perf_counter()
            first = train_fast_many(
                recipe, images[warm], labels[warm], 10, seeds, args.device, options=options, progress=False
            )
            print(f"  warm-up (compile, capture): {time.perf_counter() - started:.1f} s", flush=True)
            with torch.profiler.record_function(MEASURED):
                results = train_fast_many(
                    recipe, images, labels, 10, seeds, args.device, options=options, progress=False
                )
        wall = sum(results[0].epoch_seconds)
        profiler.export_chrome_trace(str(trace_path))
        trace = json.loads(trace_path.read_text())
    for note in first[0].notes:
        print(f"  note: {note}")
    if args.trace:
        print(f"  trace: {args.trace}")
    window = annotation_window(trace, MEASURED)
    events = [e for e in (kernel_events(trace) if cuda else cpu_self_events(trace)) if inside(e, window)]
    if not events:
        print("error: the profiler recorded no kernels: is CUPTI available to this torch build?", file=sys.stderr)
        return 1

    scale = EPOCH_IMAGES / (steps * recipe.batch_size * args.models)  # to seconds per model-epoch of 50,000 images
    table = kind_table(events, steps, scale)
    unit = "GPU" if cuda else "CPU"
    print()
    print(
        f"{unit} time by kind of {'kernel' if cuda else 'operator'}: "
        f"seconds per model-epoch of {EPOCH_IMAGES:,} images "
        f"(kernel time; {args.models} model(s), {steps} steps profiled)"
    )
    print(table.to_string(index=False))
    print()
    print(f"busiest {'kernels' if cuda else 'operators'}:")
    print(top_table(events, steps, scale, args.top).to_string(index=False))
    busy = union_seconds(events) if cuda else None
    kernel_seconds = sum(e["dur"] for e in events) / 1e6
    print()
    print(
        f"wall time {wall:.3f} s for the profiled epoch = "
        f"{wall * scale:.3f} s per model-epoch of {EPOCH_IMAGES:,} images "
        f"(profiling adds a little)"
    )
    if busy is not None:
        print(
            f"GPU busy {busy / wall:.0%} of the wall time; kernels overlapping {kernel_seconds / max(busy, 1e-12):.2f} "
            f"on average (sum of kernel time / busy time; > 1 when the models' streams overlap)"
        )
    flops = training_flops_per_image(recipe.model, tuple(images.shape[1:]))
    # cuDNN may run 1x1 convolutions as GEMMs, and max-autotune as Triton templates: all count as convolution time
    conv_seconds = (
        sum(e["dur"] for e in events if e["kind"].startswith(("convolution", "GEMM", "inductor: template"))) / 1e6
    )
    trained = steps * recipe.batch_size * args.models
    print(
        f"arithmetic: {flops / 1e9:.2f} GFLOP per training image "
        "(convolutions and classifier, forward + 2 x backward); "
        f"{flops * trained / wall / 1e12:.3g} TFLOP/s over the wall time, "
        f"{flops * trained / max(conv_seconds, 1e-12) / 1e12:.3g} TFLOP/s inside the convolution and GEMM kernels"
    )
    if cuda:
        print(
            f"a 8192^3 bf16 matmul on this card: {matmul_tflops(args.device):.0f} TFLOP/s "
            "(what its tensor cores give here)"
        )
    forget_trainers()
    return 0


def kernel_events(trace: dict) -> list[dict]:
    """The device's kernels, copies and sets of a Chrome trace: name, kind, start and duration (us), stream."""
    events = []
    for event in trace.get("traceEvents", []):
        if event.get("ph") != "X" or event.get("cat") not in ("kernel", "gpu_memcpy", "gpu_memset"):
            continue
        name = event.get("name", "")
        events.append(
            {
                "name": name,
                "kind": kind_of(name),
                "ts": float(event["ts"]),
                "dur": float(event.get("dur", 0.0)),
                "stream": (event.get("args") or {}).get("stream"),
            }
        )
    return events


def cpu_self_events(trace: dict) -> list[dict]:
    """The CPU operators of a Chrome trace with their self time (own duration less their children's), per thread."""
    by_thread = defaultdict(list)
    for event in trace.get("traceEvents", []):
        if event.get("ph") == "X" and event.get("cat") == "cpu_op":
            by_thread[(event.get("pid"), event.get("tid"))].append(event)
    events = []
    for ops in by_thread.values():
        ops.sort(key=lambda e: (float(e["ts"]), -float(e.get("dur", 0.0))))
        stack: list[dict] = []
        for op in ops:
            start, duration = float(op["ts"]), float(op.get("dur", 0.0))
            record = {
                "name": op.get("name", ""),
                "kind": kind_of(op.get("name", "")),
                "ts": start,
                "dur": duration,
                "stream": None,
                "end": start + duration,
            }
            while stack and stack[-1]["end"] <= start:
                stack.pop()
            if stack:
                stack[-1]["dur"] -= duration  # the parent's self time excludes this child
            stack.append(record)
            events.append(record)
    for record in events:
        record["dur"] = max(0.0, record["dur"])
        del record["end"]
    return events


def annotation_window(trace: dict, name: str) -> tuple[float, float]:
    """(start, end) in us of the host-side range ``name`` (a ``record_function``) in a Chrome trace."""
    for event in trace.get("traceEvents", []):
        if event.get("ph") == "X" and event.get("cat") == "user_annotation" and event.get("name") == name:
            return float(event["ts"]), float(event["ts"]) + float(event.get("dur", 0.0))
    raise ValueError(f"the trace has no range named {name!r}")


def inside(event: dict, window: tuple[float, float]) -> bool:
    """Whether ``event`` started within ``window``: the epoch synchronises before it returns,
    so every kernel it queued has started (and ended) inside its host-side range."""
    return window[0] <= event["ts"] <= window[1]


def union_seconds(events: list[dict]) -> float:
    """Seconds in which at least one of ``events`` ran (the union of their intervals)."""
    total, reach = 0.0, None
    for start, end in sorted((e["ts"], e["ts"] + e["dur"]) for e in events):
        if reach is None or start > reach:
            total += end - start
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total / 1e6


def kind_table(events: list[dict], steps: int, scale: float):
    """Per kind: seconds per model-epoch, share of all kernel time, kernels per step; largest first, then a total."""
    import pandas as pd

    seconds: defaultdict[str, float] = defaultdict(float)
    counts: defaultdict[str, int] = defaultdict(int)
    for event in events:
        seconds[event["kind"]] += event["dur"] / 1e6
        counts[event["kind"]] += 1
    total = sum(seconds.values())
    rows = [
        {
            "kind": kind,
            "s per model-epoch": round(s * scale, 4),
            "share": f"{s / total:.1%}",
            "per step": round(counts[kind] / steps, 1),
        }
        for kind, s in sorted(seconds.items(), key=lambda item: -item[1])
    ]
    rows.append(
        {
            "kind": "all",
            "s per model-epoch": round(total * scale, 4),
            "share": "100.0%",
            "per step": round(sum(counts.values()) / steps, 1),
        }
    )
    return pd.DataFrame(rows)


def top_table(events: list[dict], steps: int, scale: float, top: int):
    """The ``top`` kernels (or operators) by total time, each with its kind."""
    import pandas as pd

    seconds: defaultdict[str, float] = defaultdict(float)
    counts: defaultdict[str, int] = defaultdict(int)
    for event in events:
        seconds[event["name"]] += event["dur"] / 1e6
        counts[event["name"]] += 1
    busiest = sorted(seconds.items(), key=lambda item: -item[1])[:top]
    return pd.DataFrame(
        [
            {
                "s per model-epoch": round(s * scale, 4),
                "per step": round(counts[name] / steps, 1),
                "kind": kind_of(name),
                "name": name if len(name) <= 90 else name[:87] + "...",
            }
            for name, s in busiest
        ],
        columns=["s per model-epoch", "per step", "kind", "name"],
    )


def training_flops_per_image(model_name: str, shape: tuple) -> float:
    """FLOPs of one training image through the convolutions and linear layers: 3 x forward
    (the backward computes a gradient for the inputs and one for the weights), 2 per multiply-add."""
    import torch
    from torch import nn

    from starter_kit.models import build_model

    model = build_model(model_name, shape[0], 10).eval()
    macs = []

    def count(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            macs.append(
                output.numel() * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            )
        elif isinstance(module, nn.Linear):
            macs.append(output.numel() * module.in_features)

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros((1, *shape)))
    for hook in hooks:
        hook.remove()
    return 3 * 2 * float(sum(macs))


def matmul_tflops(device, size: int = 8192, repeats: int = 20) -> float:
    """TFLOP/s of a ``size``-cubed bf16 matmul on ``device``: the tensor cores' practical rate."""
    import torch

    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e12


if __name__ == "__main__":
    sys.exit(main())
