"""benchmarks/gpu_step_profile.py: kernels sorted into kinds, the profiled epoch alone, a CPU smoke run."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_step_profile.py"


@pytest.fixture()
def profile(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    return importlib.import_module(SCRIPT.stem)


# Kernel names as CUPTI reports them on Hopper (cuDNN 9, cuBLAS, inductor, torch), by the kind each must land in.
NAMES = {
    "sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc_tilesize128x64x64_warpgroupsize1x1x1": "convolution: forward",
    "sm90_xmma_dgrad_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc_tilesize128x128x64": "convolution: input gradient",
    "sm90_xmma_wgrad_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc_tilesize64x128x64": "convolution: weight gradient",
    "void cutlass__5x_cudnn::Kernel<cutlass_tensorop_bf16_s16816fprop_optimized_bf16_64x64_64x5_nhwc_align8>": "convolution: forward",
    "void cudnn::cnn::splitKreduce_kernel<float, float, float, __nv_bfloat16, true, false>": "convolution: split-K reductions",
    "triton_red_fused__native_batch_norm_legit_functional_convolution_backward_threshold_backward_12": "inductor: reduction (BatchNorm statistics and gradients)",
    "triton_per_fused__native_batch_norm_legit_functional_add_3": "inductor: reduction (BatchNorm statistics and gradients)",
    "triton_poi_fused__native_batch_norm_legit_functional_add_relu_7": "inductor: pointwise (normalise, ReLU, add, casts)",
    "triton_tem_fused_convolution_0": "inductor: template (max-autotune convolutions, GEMMs)",
    "nvjet_tst_64x8_64x16_4x1_v_bz_TNT": "GEMM (classifier; cuDNN may run 1x1 convolutions as GEMMs)",
    "void at::native::(anonymous namespace)::multi_tensor_apply_kernel<at::native::(anonymous namespace)::TensorListMetadata<2>>": "SGD update (foreach)",
    "void at::native::index_elementwise_kernel<128, 4, at::native::gpu_index_kernel<...>>": "shuffle, flip + crop (gather, random)",
    "void at_cuda_detail::cub::DeviceRadixSortOnesweepKernel<...>": "shuffle, flip + crop (gather, random)",
    "void cudnn::engines_precompiled::nchwToNhwcKernel<__nv_bfloat16, __nv_bfloat16, float, false, true>": "layout changes and casts",
    "void at::native::batch_norm_collect_statistics_channels_last_kernel<...>": "batch norm (eager)",
    "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>, ...>": "eager pointwise and reductions",
    "Memcpy DtoD (Device -> Device)": "memcpy / memset",
    "aten::convolution_backward": "convolution: backward (CPU, both)",
    "aten::mkldnn_convolution": "convolution: forward",
    "something_new_kernel": "other",
}


@pytest.mark.parametrize("name", list(NAMES))
def test_each_kernel_name_lands_in_its_kind(profile, name):
    assert profile.kind_of(name) == NAMES[name]


def _kernel(name, ts, dur, stream=7):
    return {"ph": "X", "cat": "kernel", "name": name, "ts": ts, "dur": dur, "args": {"stream": stream}}


def test_only_kernels_of_the_profiled_epoch_count_and_overlap_is_measured(profile):
    trace = {
        "traceEvents": [
            _kernel("triton_poi_fused_relu_0", 10, 5),  # the warm-up: before the window
            {"ph": "X", "cat": "user_annotation", "name": profile.MEASURED, "ts": 100, "dur": 100},
            _kernel("sm90_xmma_fprop_implicit_gemm", 110, 20, stream=7),
            _kernel("sm90_xmma_wgrad_implicit_gemm", 120, 20, stream=8),  # overlaps the one above
            {"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy DtoD (Device -> Device)", "ts": 150, "dur": 2},
            {
                "ph": "X",
                "cat": "cuda_runtime",
                "name": "cudaGraphLaunch",
                "ts": 105,
                "dur": 3,
            },  # host side: not a kernel
            _kernel("triton_poi_fused_relu_0", 250, 5),  # after the window
        ]
    }
    window = profile.annotation_window(trace, profile.MEASURED)
    events = [e for e in profile.kernel_events(trace) if profile.inside(e, window)]
    assert [e["name"] for e in events] == [
        "sm90_xmma_fprop_implicit_gemm",
        "sm90_xmma_wgrad_implicit_gemm",
        "Memcpy DtoD (Device -> Device)",
    ]
    assert profile.union_seconds(events) == pytest.approx(32e-6)  # [110, 140) and [150, 152)
    table = profile.kind_table(events, steps=2, scale=1.0)
    assert list(table["kind"])[-1] == "all" and table["s per model-epoch"].iloc[-1] == pytest.approx(42e-6, abs=1e-4)
    with pytest.raises(ValueError, match="no range named"):
        profile.annotation_window({"traceEvents": []}, profile.MEASURED)


def test_cpu_operators_count_their_self_time_only(profile):
    """A parent's children are subtracted from it, so nothing is counted twice."""
    trace = {
        "traceEvents": [
            {"ph": "X", "cat": "cpu_op", "name": "aten::conv2d", "ts": 0, "dur": 100, "pid": 1, "tid": 1},
            {"ph": "X", "cat": "cpu_op", "name": "aten::mkldnn_convolution", "ts": 10, "dur": 70, "pid": 1, "tid": 1},
            {"ph": "X", "cat": "cpu_op", "name": "aten::empty", "ts": 15, "dur": 5, "pid": 1, "tid": 1},
            {"ph": "X", "cat": "cpu_op", "name": "aten::add_", "ts": 120, "dur": 10, "pid": 1, "tid": 1},
            {
                "ph": "X",
                "cat": "cpu_op",
                "name": "aten::mul",
                "ts": 20,
                "dur": 40,
                "pid": 1,
                "tid": 2,
            },  # another thread
        ]
    }
    selves = {e["name"]: e["dur"] for e in profile.cpu_self_events(trace)}
    assert selves == {
        "aten::conv2d": 30,
        "aten::mkldnn_convolution": 65,
        "aten::empty": 5,
        "aten::add_": 10,
        "aten::mul": 40,
    }


def test_training_flops_of_resnet18_cifar_are_the_textbook_figure(profile):
    """0.56 G multiply-adds per 32x32 image forward; training is 3 passes, 2 FLOPs each: about 3.3 GFLOP."""
    flops = profile.training_flops_per_image("resnet18_cifar", (3, 32, 32))
    assert 3.2e9 < flops < 3.45e9


def test_without_cuda_it_refuses_in_one_line_with_exit_2(profile, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert profile.main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "no CUDA device" in captured.err and "--device cpu" in captured.err


def test_too_few_images_is_a_one_line_error(profile, capsys):
    assert profile.main(["--device", "cpu", "--images", "100"]) == 2
    assert "under two batches" in capsys.readouterr().err


def test_cpu_smoke_run_prints_both_tables_and_the_arithmetic(profile, capsys):
    before = torch.get_num_threads()
    try:
        code = profile.main(
            [
                "--device",
                "cpu",
                "--model",
                "resnet_digits",
                "--images",
                "512",
                "--models",
                "1",
                "--compile",
                "none",
                "--fused-sgd",
            ]
        )
    finally:
        torch.set_num_threads(before)
    assert code == 0
    out = capsys.readouterr().out
    assert "CPU time by kind of operator" in out and "convolution: forward" in out and "batch norm (eager)" in out
    assert "busiest operators" in out and "aten::convolution_backward" in out
    assert "per model-epoch of 50,000 images" in out and "GFLOP per training image" in out and "fused SGD" in out
