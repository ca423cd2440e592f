#!/usr/bin/env python3
"""The training loop of pytorch/examples/dcgan (main.py), data loading included, timed: the reference that
compare_pytorch.py --loop runs next to `dcgan_train` on the same data.

The loop is the example's: a DataLoader with `--workers` worker processes over the images (resize, center
crop, ToTensor, Normalize(0.5, 0.5)), shuffle, and per batch D on real and fake, D's step, G's step, the
.item() reads of the log line. As the example does, D is not frozen in G's step and the last partial batch
is trained on. Two differences, both in PyTorch's favour or neutral: BCEWithLogitsLoss on D's logit
instead of Sigmoid + BCELoss (as ours), and no sample grids or checkpoints are written (ours writes none
in the timed window either: compare_pytorch.py sets the intervals past the run).

Data: an MNIST folder (the four idx files, raw or .gz, read with numpy: no torchvision dataset download)
or an image folder (searched recursively, decoded by PIL as torchvision's ImageFolder does).

  reference_dcgan.py --data DIR --image-size 32 --channels 1 --batch-size 64 --steps 40 --warmup 5
Prints one line: "images_per_s=<rate> steps=<n> torch=<version>".
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_pytorch import build_models, weights_init  # noqa: E402  the same networks as the step comparison


def read_idx_images(folder):
    for name in ("train-images-idx3-ubyte", "train-images.idx3-ubyte"):
        for suffix in ("", ".gz"):
            path = os.path.join(folder, name + suffix)
            if os.path.exists(path):
                with (gzip.open(path, "rb") if suffix else open(path, "rb")) as f:
                    data = f.read()
                count, rows, cols = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
                return np.frombuffer(data, np.uint8, count * rows * cols, 16).reshape(count, rows, cols)
    return None


class MnistImages(Dataset):
    """MNIST's train images as transforms.Resize(size) + ToTensor + Normalize(0.5, 0.5) give them."""

    def __init__(self, images, size):
        self.images, self.size = images, size

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x = torch.from_numpy(self.images[i].astype(np.float32) / 255.0)[None, None]
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        return (x[0] - 0.5) / 0.5, 0


def image_folder(root, size, channels):
    import torchvision.datasets as dset
    import torchvision.transforms as transforms
    steps = [transforms.Resize(size), transforms.CenterCrop(size)]
    if channels == 1:
        steps.append(transforms.Grayscale())
    steps += [transforms.ToTensor(), transforms.Normalize((0.5,) * channels, (0.5,) * channels)]

    class Flat(dset.ImageFolder):  # ImageFolder wants class subfolders; a flat folder of images is one class
        def find_classes(self, directory):
            return [""], {"": 0}

    return Flat(root=root, transform=transforms.Compose(steps))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--steps", type=int, default=40, help="timed steps")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (worker start-up included)")
    p.add_argument("--nz", type=int, default=100)
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--ndf", type=int, default=64)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    images = read_idx_images(a.data)
    data = MnistImages(images, a.image_size) if images is not None else image_folder(a.data, a.image_size, a.channels)
    loader = DataLoader(data, batch_size=a.batch_size, shuffle=True, num_workers=a.workers)
    g, d = build_models(nn, a.image_size, a.channels, a.nz, a.ngf, a.ndf)
    g.apply(lambda m: weights_init(nn, m))
    d.apply(lambda m: weights_init(nn, m))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    criterion = nn.BCEWithLogitsLoss()

    done, images_timed, t0 = 0, 0, None
    while done < a.warmup + a.steps:
        for real, _ in loader:
            if done == a.warmup:
                t0 = time.perf_counter()
            b = real.size(0)
            d.zero_grad()
            out = d(real).view(-1)
            err_real = criterion(out, torch.ones(b))
            err_real.backward()
            d_x = torch.sigmoid(out).mean().item()
            fake = g(torch.randn(b, a.nz, 1, 1))
            out = d(fake.detach()).view(-1)
            err_fake = criterion(out, torch.zeros(b))
            err_fake.backward()
            d_g_z1 = torch.sigmoid(out).mean().item()
            opt_d.step()
            g.zero_grad()
            out = d(fake).view(-1)
            err_g = criterion(out, torch.ones(b))
            err_g.backward()
            d_g_z2 = torch.sigmoid(out).mean().item()
            opt_g.step()
            _ = (err_real.item() + err_fake.item(), err_g.item(), d_x, d_g_z1, d_g_z2)  # the log line's reads
            if done >= a.warmup:
                images_timed += b
            done += 1
            if done >= a.warmup + a.steps:
                break
    rate = images_timed / (time.perf_counter() - t0)
    print(f"images_per_s={rate:.2f} steps={a.steps} torch={torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
