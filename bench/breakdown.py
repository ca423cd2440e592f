#!/usr/bin/env python3
"""Tables for bench/RESULTS.md from bench_kernels (and optionally bench_train_step) JSON output.

  bench_kernels --benchmark_format=json --benchmark_out=kernels.json --benchmark_out_format=json
  bench/breakdown.py kernels.json [more.json ...] [--backend cpu] [--step step.json ...]

Prints (1) every layer pass with its time, GFLOP/s, fraction of the GEMM ceiling, GB/s and fraction of
the copy ceiling, and (2) a model of one DCGAN training step: each pass's time multiplied by how often
dcgan::train_step runs it, summed per layer and per kind, next to the measured step when --step is given.
The difference between the two is what the per-layer view cannot see: allocation, autograd bookkeeping,
gradient accumulation, noise generation, copies.
"""
import argparse
import collections
import json
import re
import sys


def times_per_step(net, layer, pass_name):
    """How often one train_step runs a pass: D runs three times (real, detached fake, fake for G's loss),
    backward too, but its weight gradients only twice (D is frozen in G's step); G once. Inputs that need no
    gradient get no backward-data pass: the images into D.conv1 except in G's step, the noise into
    G.convT1."""
    if net == "G":
        if layer == "adam":
            return 1
        if layer == "convT1" and pass_name == "backward_data":
            return 0
        return 1
    if layer == "adam":
        return 1
    if layer == "conv1" and pass_name == "backward_data":
        return 1
    if pass_name == "backward_weight":
        return 2
    return 3


def load(paths, backend):
    """The fastest run of each benchmark over all files (on a shared machine the least disturbed one), with
    of_gemm_peak and of_copy_bw recomputed against the best ceilings seen in any file, so a ceiling measured
    while the machine was busy cannot inflate them."""
    best, order = {}, []
    for path in paths:
        with open(path) as f:
            for b in json.load(f)["benchmarks"]:
                # "<backend>/<layer>/<pass>[/manual_time]": the per-implementation runs
                # ("cpu/D.conv2/forward/im2col/...") are compared by bench_kernels' own output, not summed here
                m = re.match(rf"{backend}/([^/]+)/([^/]+)(/manual_time)?$", b["name"])
                if not m or b.get("error_occurred"):
                    continue
                ms = b["real_time"] * {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b["time_unit"]]
                key = (m.group(1), m.group(2))
                if key not in best:
                    order.append(key)
                if key not in best or ms < best[key][0]:
                    best[key] = (ms, b)
    peak_flops = max((b.get("GFLOP/s", 0) for (l, p), (_, b) in best.items() if l == "ceiling"), default=0)
    peak_bw = max((b["GB/s"] for (l, p), (_, b) in best.items() if (l, p) == ("ceiling", "copy")), default=0)
    rows = []
    for key in order:
        ms, b = best[key]
        b = dict(b)
        if "GFLOP/s" in b and peak_flops:
            b["of_gemm_peak"] = b["GFLOP/s"] / peak_flops
        if "GB/s" in b and peak_bw:
            b["of_copy_bw"] = b["GB/s"] / peak_bw
        rows.append((key[0], key[1], ms, b))
    return rows


def net_name(paths):
    """The configuration bench_kernels ran (its "net" context, --net=...; dcgan64_3ch_b128 before it had one),
    which must be the same in every file."""
    names = set()
    for path in paths:
        with open(path) as f:
            names.add(json.load(f).get("context", {}).get("net", "dcgan64_3ch_b128"))
    if len(names) != 1:
        sys.exit(f"breakdown.py: the files hold different configurations: {sorted(names)}")
    return names.pop()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("kernels", nargs="+", help="bench_kernels JSON output (several: the best run of each)")
    p.add_argument("--backend", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--step", nargs="+", help="bench_train_step JSON output(s): the measured step of the same "
                   "configuration")
    a = p.parse_args()
    config = net_name(a.kernels)
    batch = int(re.search(r"_b(\d+)$", config).group(1))
    rows = load(a.kernels, a.backend)
    if not rows:
        sys.exit(f"breakdown.py: no {a.backend}/ benchmarks in {a.kernels}")

    print("| layer | pass | time ms | GFLOP/s | of sgemm peak | GB/s | of copy bw |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    fmt = lambda b, k, spec: format(b[k], spec) if k in b else ""
    for layer, pass_name, ms, b in rows:
        cells = [fmt(b, "GFLOP/s", ".1f"), fmt(b, "of_gemm_peak", ".0%"), fmt(b, "GB/s", ".1f"),
                 fmt(b, "of_copy_bw", ".0%")]
        print(f"| {layer} | {pass_name} | {ms:.3f} | " + " | ".join(cells) + " |")

    per_layer, per_kind = collections.Counter(), collections.Counter()
    for layer, pass_name, ms, _ in rows:
        if layer == "ceiling":
            continue
        net, name = layer.split(".", 1)
        t = ms * times_per_step(net, name, pass_name)
        per_layer[layer] += t
        kind = re.sub(r"\d+$", "", name)
        kind = "conv" if kind in ("conv", "convT") else kind
        per_kind[f"{kind} {pass_name}" if kind == "conv" else kind] += t
    total = sum(per_layer.values())
    print(f"\nModelled DCGAN step (sum of passes x times per step): {total:.0f} ms")
    # The GEMM-bound floor: the step's convolution FLOPs at the sgemm ceiling, what no im2col + GEMM engine on
    # this BLAS can beat however well it hides everything else.
    peak = max((b.get("GFLOP/s", 0) for layer, _, _, b in rows if layer == "ceiling"), default=0)
    conv_flops = sum(b["GFLOP/s"] * ms * 1e-3 * times_per_step(*layer.split(".", 1), pass_name)
                     for layer, pass_name, ms, b in rows if layer != "ceiling" and "GFLOP/s" in b)
    if peak:
        floor_ms = conv_flops / peak * 1e3
        print(f"{config}: convolution work per step: {conv_flops:.0f} GFLOP; at the sgemm ceiling ({peak:.0f} "
              f"GFLOP/s) that alone takes {floor_ms:.0f} ms, at most {batch / floor_ms * 1e3:.1f} images/s at "
              f"batch {batch}.")
    print("\n| layer | ms per step | share |\n| --- | ---: | ---: |")
    for layer, t in sorted(per_layer.items(), key=lambda kv: -kv[1]):
        print(f"| {layer} | {t:.1f} | {t / total:.1%} |")
    print("\n| kind | ms per step | share |\n| --- | ---: | ---: |")
    for kind, t in sorted(per_kind.items(), key=lambda kv: -kv[1]):
        print(f"| {kind} | {t:.1f} | {t / total:.1%} |")

    if a.step:
        rates = []
        for path in a.step:
            with open(path) as f:
                rates += [b["images_per_s"] for b in json.load(f)["benchmarks"]
                          if b["name"].startswith(f"{a.backend}/{config}/") and "images_per_s" in b]
        if rates:
            step_ms = batch / max(rates) * 1e3
            print(f"\nMeasured step (best run): {step_ms:.0f} ms; the passes above account for "
                  f"{total / step_ms:.0%}, the rest ({step_ms - total:.0f} ms) is outside the kernels "
                  "timed here.")

if __name__ == "__main__":
    main()
