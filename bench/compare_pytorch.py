#!/usr/bin/env python3
"""DCGAN training-step throughput, cudagan next to PyTorch on the same machine.

Runs our bench_train_step (Google Benchmark, JSON output) and then the identical model and step in PyTorch:
the architecture of models/src/dcgan.cpp (pytorch/examples/dcgan without the final Sigmoid), weights
N(0, 0.02), batchnorm gamma N(1, 0.02) and beta 0, Adam lr 2e-4 betas (0.5, 0.999), BCEWithLogitsLoss,
D on a real and a fake batch, D's step, then G's non-saturating step. Ours freezes D during G's step (no D
weight gradients, which the reference computes only to discard them): on the CPU PyTorch is timed both as
the reference runs it and with the same freeze (net_d.requires_grad_(False)), for a like-for-like ratio.
Synthetic images are generated once and stay on the device, so data loading is excluded on both sides.
Prints one table: configuration, ours images/s, PyTorch images/s, ratio, and the PyTorch version.

With --loop it compares whole training loops instead, data loading included: `dcgan_train` on real data
against the reference loop of pytorch/examples/dcgan with its DataLoader (bench/reference_dcgan.py), on
MNIST (data/mnist, 32x32 gray) and the CelebA sample (../shared/data/celeba_sample, 64x64 RGB; skipped when
absent), batch 64, --workers 2 on both sides.

  CPU: both sides use the same thread count (--threads, default os.cpu_count()).
  GPU: ours with TF32 GEMMs vs PyTorch's defaults; ours strict fp32 vs PyTorch strict fp32 (no TF32 in
       matmul or cuDNN, cudnn.benchmark on); ours TF32 vs torch.compile when this PyTorch has it.

The anchor is the current PyTorch from PyPI: bench/setup_pytorch.sh installs it into build/pytorch-venv, then
  build/pytorch-venv/bin/python bench/compare_pytorch.py --device cpu
  build/pytorch-venv/bin/python bench/compare_pytorch.py --device cpu --loop
Each figure is the best of --repeat runs, ours and PyTorch's alternating (A B A B ...): on a shared machine the
best run is the least disturbed one.
"""
import argparse
import glob
import json
import math
import os
import subprocess
import sys
import time

CONFIGS = [  # (name as bench_train_step prints it, image size, channels, batch); nz 100, ngf = ndf = 64
    ("dcgan64_3ch_b64", 64, 3, 64),
    ("dcgan64_3ch_b128", 64, 3, 128),
    ("dcgan32_1ch_b64", 32, 1, 64),
]
NZ, NGF, NDF = 100, 64, 64
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fail(message):
    print(f"compare_pytorch.py: {message}", file=sys.stderr)
    sys.exit(2)


# ----------------------------------------------------------------------------------------------- ours
def find_binary(path, folder="bench", name="bench_train_step"):
    if path:
        if not os.access(path, os.X_OK):
            fail(f"{path}: not an executable; build it with 'ninja -C <build> {name}'")
        return path
    pattern = os.path.join(REPO, "build*", folder, name)
    found = [p for p in glob.glob(pattern) if os.access(p, os.X_OK)]
    if not found:
        fail(f"{name} not found under build*/{folder}/: build it (cmake -S . -B build && "
             f"ninja -C build {name}) or pass its path")
    return max(found, key=os.path.getmtime)


def run_ours(binary, device, configs, steps, warmup, threads, tf32):
    """images/s per configuration name, and the BLAS line, from one run of bench_train_step."""
    env = our_env(threads if device == "cpu" else None)
    env["CUDAGAN_TF32"] = "1" if tf32 else "0"
    names = "|".join(name for name, *_ in configs)
    cmd = [binary, "--benchmark_format=json", f"--benchmark_filter=^{device}/({names})/",
           f"--steps={steps}", f"--warmup={warmup}"]
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        fail(f"{' '.join(cmd)} exited with {proc.returncode}:\n{proc.stderr.strip()}")
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        fail(f"could not parse the JSON output of {binary}: {e}")
    rates = {}
    for b in report.get("benchmarks", []):
        if b.get("error_occurred"):
            fail(f"{b['name']}: {b.get('error_message', 'failed')}")
        config = b["name"].split("/")[1]
        rates[config] = b.get("images_per_s", float("nan"))
    missing = [name for name, *_ in configs if name not in rates]
    if missing:
        fail(f"{binary} reported nothing for {device}/{', '.join(missing)}: {proc.stderr.strip()}")
    context = report.get("context", {})
    return rates, context.get("blas", "?"), context.get("cpu_kernels", "")


def our_env(threads):
    """Our side's environment: the thread count, and no OPENBLAS_CORETYPE unless --keep-coretype. A machine (this
    one's image sets OPENBLAS_CORETYPE=Haswell on an AVX-512 CPU) can hold OpenBLAS to kernels slower than the
    CPU's; PyTorch's MKL and oneDNN pick their own, so like for like is both sides on the CPU's best kernels."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = str(threads)
    if not KEEP_CORETYPE[0]:
        env.pop("OPENBLAS_CORETYPE", None)
    return env


KEEP_CORETYPE = [False]  # --keep-coretype


def run_ceiling(binary, threads):
    """The sgemm ceiling (GFLOP/s of a 2048^3 sgemm through our cpu::gemm), from bench_kernels."""
    cmd = [binary, "--benchmark_format=json", "--benchmark_filter=^cpu/ceiling/sgemm_2048",
           "--benchmark_min_time=0.3"]
    proc = subprocess.run(cmd, env=our_env(threads), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        fail(f"{' '.join(cmd)} exited with {proc.returncode}:\n{proc.stderr.strip()}")
    rates = [b.get("GFLOP/s", 0.0) for b in json.loads(proc.stdout).get("benchmarks", [])]
    if not rates:
        fail(f"{binary} reported no sgemm ceiling")
    return max(rates)


def conv_layers(size, channels, nz=NZ, ngf=NGF, ndf=NDF):
    """(net, index, forward FLOPs per image) of every convolution of build_models' networks: 2 Cin Cout k^2 times
    the output pixels of a convolution, times the input pixels of a transposed one."""
    layers = int(math.log2(size)) - 2
    out = []
    width, pixels = ngf * 2 ** (layers - 1), 1
    out.append(("G", 0, 2 * nz * width * 16 * pixels))
    pixels = 16
    for i in range(1, layers):
        out.append(("G", i, 2 * width * (width // 2) * 16 * pixels))
        width //= 2
        pixels *= 4
    out.append(("G", layers, 2 * width * channels * 16 * pixels))
    width, pixels, cin = ndf, (size // 2) ** 2, channels
    for i in range(layers):
        out.append(("D", i, 2 * cin * width * 16 * pixels))
        cin, width, pixels = width, width * 2, pixels // 4
    out.append(("D", layers, 2 * cin * 1 * 16 * 1))
    return out


def winograd_passes(size, channels, batch):
    """Which passes of each convolution run Winograd F(2x2, 2x2) (9 multiplies where the direct method does 16)
    on an AVX-512 machine: kernels/cpu/conv.cpp's rules (winograd_forward, winograd_backward_data,
    winograd_backward_weight) on the convolution geometry of every layer, {(net, index): (fwd, data, weight)}
    in the geometry's own terms (a transposed layer's forward is its geometry's backward data)."""
    layers = int(math.log2(size)) - 2
    out = {}

    def rules(cin, h, cout):  # a stride-2 4x4 pad-1 convolution cin x h x h -> cout x h/2 x h/2
        big = cin >= 16 and cout >= 16 and h >= 2
        out_tiles = batch * ((h // 2 + 1) // 2) ** 2
        in_tiles = batch * ((h + 3) // 4) ** 2
        weight = big and cin % 16 == 0 and out_tiles >= 256 and 9 * cout * 4 * cin <= 1 << 21
        return big and out_tiles >= 256, big and in_tiles >= 256, weight

    width, s_in = NGF * 2 ** (layers - 1), 4
    for i in range(1, layers + 1):  # G's stride-2 layers: geometry (convT out) -> (convT in)
        cout_t = width // 2 if i < layers else channels
        out[("G", i)] = rules(cout_t, 2 * s_in, width)
        width, s_in = cout_t, 2 * s_in
    width, s, cin = NDF, size, channels
    for i in range(layers):
        out[("D", i)] = rules(cin, s, width)
        cin, width, s = width, width * 2, s // 2
    return out


def step_gflop_executed_per_image(size, channels, batch):
    """step_gflop_per_image with Winograd's passes at 9/16 of the direct method's multiplies (AVX-512)."""
    wino = winograd_passes(size, channels, batch)
    total = 0
    for net, i, f in conv_layers(size, channels):
        fwd, data, weight = (x * 7 / 16 for x in wino.get((net, i), (False, False, False)))
        if net == "G":  # the layer's forward is its geometry's backward data, and the other way round
            total += f * (1 - data) + f * (1 - weight) + (f * (1 - fwd) if i > 0 else 0)
        else:
            total += 3 * f * (1 - fwd) + 2 * f * (1 - weight) + (3 * f * (1 - data) if i > 0 else f * (1 - data))
    return total / 1e9


def step_gflop_per_image(size, channels):
    """The convolution work of one image in dcgan::train_step (bench/breakdown.py's times_per_step): G forward
    once and backward once (no data gradient into the noise); D forward three times (real, detached fake, fake
    for G's loss), weight gradients twice (frozen in G's step), data gradients three times except into the
    images, which only G's step needs."""
    total = 0
    for net, i, f in conv_layers(size, channels):
        if net == "G":
            total += f + f + (f if i > 0 else 0)
        else:
            total += 3 * f + 2 * f + (3 * f if i > 0 else f)
    return total / 1e9


# -------------------------------------------------------------------------------------------- PyTorch
def build_models(nn, size, channels, nz=NZ, ngf=NGF, ndf=NDF):
    """G and D of models/src/dcgan.cpp (pytorch/examples/dcgan without the final Sigmoid); also the networks
    of bench/reference_dcgan.py's loop."""
    layers = int(math.log2(size)) - 2
    width = ngf * 2 ** (layers - 1)
    g = [nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False), nn.BatchNorm2d(width), nn.ReLU(True)]
    for _ in range(1, layers):
        g += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2),
              nn.ReLU(True)]
        width //= 2
    g += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
    width = ndf
    d = [nn.Conv2d(channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    for _ in range(1, layers):
        d += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2),
              nn.LeakyReLU(0.2, inplace=True)]
        width *= 2
    d += [nn.Conv2d(width, 1, 4, 1, 0, bias=False)]  # one logit per image: no Sigmoid (BCEWithLogitsLoss)
    return nn.Sequential(*g), nn.Sequential(*d)


def weights_init(nn, m):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def time_pytorch(torch, device, size, channels, batch, steps, warmup, compile_models=False, freeze_d=False):
    nn = torch.nn
    torch.manual_seed(1234)
    net_g, net_d = build_models(nn, size, channels)
    net_g.apply(lambda m: weights_init(nn, m))
    net_d.apply(lambda m: weights_init(nn, m))
    net_g.to(device)
    net_d.to(device)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    g, d = (torch.compile(net_g), torch.compile(net_d)) if compile_models else (net_g, net_d)
    criterion = nn.BCEWithLogitsLoss()
    real = torch.rand(batch, channels, size, size, device=device) * 2 - 1
    ones = torch.ones(batch, device=device)
    zeros = torch.zeros(batch, device=device)

    def step():  # as dcgan::train_step, including the statistics it reads back
        opt_d.zero_grad(set_to_none=True)
        out_real = d(real).view(-1)
        loss_real = criterion(out_real, ones)
        loss_real.backward()
        fake = g(torch.randn(batch, NZ, 1, 1, device=device))
        out_fake = d(fake.detach()).view(-1)
        loss_fake = criterion(out_fake, zeros)
        loss_fake.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        if freeze_d:  # as dcgan::train_step: no D weight gradients in G's step (the reference discards them)
            net_d.requires_grad_(False)
        out_g = d(fake).view(-1)
        loss_g = criterion(out_g, ones)
        loss_g.backward()
        if freeze_d:
            net_d.requires_grad_(True)
        opt_g.step()
        with torch.no_grad():
            return [loss_real.item() + loss_fake.item(), loss_g.item()] + [
                torch.sigmoid(o).mean().item() for o in (out_real, out_fake, out_g)]

    for _ in range(warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def set_strict_fp32(torch, strict):
    torch.backends.cuda.matmul.allow_tf32 = False  # PyTorch's default since 1.12
    torch.backends.cudnn.allow_tf32 = not strict     # default True: cuDNN convolutions in TF32
    torch.backends.cudnn.benchmark = strict


# ---------------------------------------------------------------------------------- whole training loops
LOOPS = [  # (label, data folder, image size, channels); batch 64, nz 100, ngf = ndf = 64
    ("MNIST 32x32 gray", os.path.join(REPO, "data", "mnist"), 32, 1),
    ("CelebA sample 64x64 RGB", os.path.join(os.path.dirname(REPO), "shared", "data", "celeba_sample"), 64, 3),
]


def run_our_loop(binary, data, size, channels, batch, steps, warmup, threads, workers, scratch):
    """images/s of dcgan_train's steps after the warm-up, from its losses.csv (elapsed_s: training time with
    the waits for data; nothing is written inside the window: every interval is past the run)."""
    out = os.path.join(scratch, f"ours_{size}_{channels}")
    subprocess.run(["rm", "-rf", out], check=True)
    total = warmup + steps
    never = str(10 * total)
    cmd = [binary, data, out, "--image-size", str(size), "--channels", str(channels), "--batch-size", str(batch),
           "--workers", str(workers), "--max-steps", str(total), "--epochs", "1000", "--log-every", never,
           "--sample-every", never, "--checkpoint-every", never, "--checkpoint-minutes", "0", "--eval-every", "0",
           "--device", "cpu"]
    proc = subprocess.run(cmd, env=our_env(threads), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        fail(f"{' '.join(cmd)} exited with {proc.returncode}:\n{proc.stdout[-2000:]}")
    with open(os.path.join(out, "losses.csv")) as f:
        rows = [line.strip().split(",") for line in f.readlines()[1:]]
    elapsed = {int(r[0]): float(r[-1]) for r in rows}
    return batch * steps / (elapsed[total] - elapsed[warmup])


def run_reference_loop(data, size, channels, batch, steps, warmup, threads, workers):
    script = os.path.join(REPO, "bench", "reference_dcgan.py")
    cmd = [sys.executable, script, "--data", data, "--image-size", str(size), "--channels", str(channels),
           "--batch-size", str(batch), "--steps", str(steps), "--warmup", str(warmup), "--threads", str(threads),
           "--workers", str(workers)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        fail(f"{' '.join(cmd)} exited with {proc.returncode}:\n{proc.stderr[-2000:]}")
    fields = dict(kv.split("=") for kv in proc.stdout.split())
    return float(fields["images_per_s"])


def compare_loops(a, torch):
    binary = find_binary(a.train_binary, "apps", "dcgan_train")
    steps = a.steps if a.steps is not None else 40
    warmup = a.warmup if a.warmup is not None else 5
    import tempfile
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for label, data, size, channels in LOOPS:
            if not os.path.isdir(data):
                print(f"compare_pytorch.py: {data} is absent: {label} skipped", file=sys.stderr)
                continue
            ours = theirs = 0.0
            for _ in range(a.repeat):
                ours = max(ours, run_our_loop(binary, data, size, channels, 64, steps, warmup, a.threads, 2, scratch))
                theirs = max(theirs, run_reference_loop(data, size, channels, 64, steps, warmup, a.threads, 2))
            rows.append((label, ours, theirs))
    print(f"Whole training loops, data loading included: batch 64, 2 loader workers, CPU, {a.threads} threads; "
          f"{steps} timed steps after {warmup}; best of {a.repeat} alternating run(s)")
    print("| data | ours images/s | PyTorch images/s | ratio (ours / PyTorch) | PyTorch |")
    print("| --- | ---: | ---: | ---: | --- |")
    for label, ours, theirs in rows:
        print(f"| {label} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f}x | {torch.__version__} |")


# ----------------------------------------------------------------------------------------------- main
def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--steps", type=int, help="timed steps per configuration (default: 3 on cpu, 50 on cuda)")
    p.add_argument("--warmup", type=int, help="untimed steps first (default: 1 on cpu, 5 on cuda)")
    p.add_argument("--repeat", type=int, default=3,
                   help="alternate ours and PyTorch this many times and report each side's best")
    p.add_argument("--loop", action="store_true",
                   help="whole training loops on real data, data loading included (dcgan_train vs the reference)")
    p.add_argument("--train-binary", help="our dcgan_train for --loop (default: the newest build*/apps/ one)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads for both sides")
    p.add_argument("--bench-binary", help="our bench_train_step (default: the newest build*/bench/ one)")
    p.add_argument("--config", action="append", choices=[c[0] for c in CONFIGS],
                   help="only this configuration (repeatable)")
    p.add_argument("--keep-coretype", action="store_true",
                   help="run ours with the environment's OPENBLAS_CORETYPE (default: unset, the CPU's best kernels)")
    a = p.parse_args()
    KEEP_CORETYPE[0] = a.keep_coretype
    steps = a.steps if a.steps is not None else (3 if a.device == "cpu" else 50)
    warmup = a.warmup if a.warmup is not None else (1 if a.device == "cpu" else 5)
    if steps < 1 or warmup < 0 or a.threads < 1 or a.repeat < 1:
        fail("--steps, --threads and --repeat must be >= 1, --warmup >= 0")
    configs = [c for c in CONFIGS if not a.config or c[0] in a.config]
    try:
        import torch
    except ImportError:
        fail("PyTorch is not importable: run bench/setup_pytorch.sh (the current PyTorch from PyPI, in "
             "build/pytorch-venv), then build/pytorch-venv/bin/python bench/compare_pytorch.py")
    if a.loop:
        if a.device != "cpu":
            fail("--loop compares CPU training loops; use --device cpu")
        return compare_loops(a, torch)
    binary = find_binary(a.bench_binary)
    if a.device == "cuda" and not torch.cuda.is_available():
        fail("--device cuda: this PyTorch sees no GPU (or was built without CUDA)")

    # One row per comparison: (label, configuration, our math mode, PyTorch's settings).
    can_compile = a.device == "cuda" and hasattr(torch, "compile")
    cases = []
    for name, *_ in configs:
        if a.device == "cpu":
            cases.append((f"cpu {name}, {a.threads} threads: vs the reference step", name, "fp32", "cpu"))
            cases.append((f"cpu {name}, {a.threads} threads: vs PyTorch with D frozen in G's step", name,
                          "fp32", "cpu-frozen"))
            continue
        cases.append((f"cuda {name}: ours TF32 vs PyTorch defaults", name, "tf32", "defaults"))
        cases.append((f"cuda {name}: strict fp32 both (cudnn.benchmark)", name, "fp32", "strict"))
        if can_compile:
            cases.append((f"cuda {name}: ours TF32 vs torch.compile", name, "tf32", "compile"))
    shapes = {name: (size, ch, batch) for name, size, ch, batch in configs}
    torch.set_num_threads(a.threads)

    # Alternating runs, best of each side: on a shared machine the best run is the least disturbed one. On the
    # CPU the sgemm ceiling is measured in the same rounds, for the fraction of it each side's step reaches.
    ours, theirs = {}, [0.0] * len(cases)
    ceiling = 0.0
    kernels_binary = find_binary(None, "bench", "bench_kernels") if a.device == "cpu" else None
    for _ in range(a.repeat):
        if kernels_binary:
            ceiling = max(ceiling, run_ceiling(kernels_binary, a.threads))
        for mode in sorted({c[2] for c in cases}):
            rates, blas, cpu_kernels = run_ours(binary, a.device, configs, steps, warmup, a.threads,
                                                tf32=mode == "tf32")
            for name, rate in rates.items():
                ours[mode, name] = max(ours.get((mode, name), 0.0), rate)
        for i, (_, name, _, setting) in enumerate(cases):
            if a.device == "cuda":
                set_strict_fp32(torch, setting == "strict")
            rate = time_pytorch(torch, a.device, *shapes[name], steps, warmup,
                                compile_models=setting == "compile", freeze_d=setting == "cpu-frozen")
            theirs[i] = max(theirs[i], rate)

    if a.device == "cpu":
        where = f"CPU, {a.threads} threads; ours: {blas}"
    else:
        where = torch.cuda.get_device_name(0) + ("" if can_compile else "; torch.compile not available")
    print(f"PyTorch {torch.__version__}; {where}; {steps} timed steps after {warmup} warm-up; "
          f"best of {a.repeat} alternating run(s)")
    if a.device == "cuda":
        print("| configuration | ours images/s | PyTorch images/s | ratio (ours / PyTorch) | PyTorch |")
        print("| --- | ---: | ---: | ---: | --- |")
        for (label, name, mode, _), rate in zip(cases, theirs):
            print(f"| {label} | {ours[mode, name]:.1f} | {rate:.1f} | {ours[mode, name] / rate:.2f}x | "
                  f"{torch.__version__} |")
        return
    # The fraction of the ceiling: the step's convolution FLOPs (as dcgan::train_step executes them; PyTorch's
    # reference step does more, D's weight gradients in G's step, so its fraction is a lower bound) per second.
    # With AVX-512 our Winograd passes execute 9/16 of the direct method's multiplies: "ours of ceiling" counts
    # the direct method's FLOPs (the same work as PyTorch's), "executed" the multiplies ours does.
    winograd = cpu_kernels.startswith("avx512")
    print(f"sgemm ceiling in the same run: {ceiling:.0f} GFLOP/s (2048^3 through cpu::gemm, best of {a.repeat}); "
          f"our kernels: {cpu_kernels or '?'}")
    print("| configuration | ours images/s | PyTorch images/s | ratio (ours / PyTorch) | ours of ceiling | "
          "ours of ceiling, executed | PyTorch of ceiling | PyTorch |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for (label, name, mode, _), rate in zip(cases, theirs):
        size, ch, batch = shapes[name]
        gflop = step_gflop_per_image(size, ch)
        executed = step_gflop_executed_per_image(size, ch, batch) if winograd else gflop
        print(f"| {label} | {ours[mode, name]:.1f} | {rate:.1f} | {ours[mode, name] / rate:.2f}x | "
              f"{100 * ours[mode, name] * gflop / ceiling:.0f}% | {100 * ours[mode, name] * executed / ceiling:.0f}% | "
              f"{100 * rate * gflop / ceiling:.0f}% | {torch.__version__} |")

if __name__ == "__main__":
    main()
