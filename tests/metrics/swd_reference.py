#!/usr/bin/env python3
"""An independent numpy implementation of Progressive GAN's sliced Wasserstein distance, to check
engine/src/metrics/swd.cpp against (tests/metrics/swd_numpy_check.cpp writes the inputs and runs this).

    swd_reference.py FOLDER

FOLDER holds what the C++ side wrote:
    header.json          {"n", "channels", "size", "patch_size", "patches_per_image", "resolutions",
                         "min_std"}
    a.bin, b.bin         the two sets, float32 [n, channels, size, size], little-endian
    corners_a_<l>.bin    int32 [n * patches_per_image, 2]: (y, x) top-left corners of the patches of set a at
    corners_b_<l>.bin    pyramid level l (likewise b)
    directions_<l>.bin   float32 [directions, 3 * patch_size^2]: the unit directions of level l
Prints one line of JSON: {"per_level_x1e3": [...], "average_x1e3": ...}.

It follows metrics/sliced_wasserstein.py of tkarras/progressive_growing_of_gans, written another way than
the C++ (which uses separable matrices through conv2d): the 5x5 kernel applied tap by tap to a
numpy.pad(mode="reflect") image (scipy.ndimage's mode "mirror", which the reference uses), gray replicated to
three channels first, all in float64. The one departure, shared with the C++ and documented in
cudagan/metrics/swd.h: a channel whose std is <= min_std is centred, not divided by it.
Exits 77 (skipped) when numpy is missing.
"""
import json
import os
import sys

try:
    import numpy as np
except ImportError:
    print("swd_reference.py: numpy is not installed (apt-get install python3-numpy)")
    sys.exit(77)

KERNEL = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float64) / 256.0


def blur(x, gain=1.0):
    """x [n, c, h, w] convolved with gain * KERNEL, mirrored borders, same size."""
    h, w = x.shape[2], x.shape[3]
    p = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="reflect")
    out = np.zeros_like(x)
    for dy in range(5):
        for dx in range(5):
            out += KERNEL[dy, dx] * p[:, :, dy:dy + h, dx:dx + w]
    return gain * out


def pyr_down(x):
    return blur(x)[:, :, ::2, ::2]


def pyr_up(x):
    n, c, h, w = x.shape
    z = np.zeros((n, c, 2 * h, 2 * w), x.dtype)
    z[:, :, ::2, ::2] = x
    return blur(z, 4.0)


def laplacian_pyramid(x, levels):
    pyramid = [x]
    for _ in range(1, levels):
        pyramid.append(pyr_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - pyr_up(pyramid[-1])
    return pyramid


def descriptors(level, corners, per_image, p):
    """level [n, 3, r, r], corners [n * per_image, 2] -> [n * per_image, 3, p, p]."""
    img = np.arange(corners.shape[0]) // per_image
    y = corners[:, 0][:, None, None, None] + np.arange(p)[None, None, :, None]
    x = corners[:, 1][:, None, None, None] + np.arange(p)[None, None, None, :]
    chan = np.arange(3)[None, :, None, None]
    return level[img[:, None, None, None], chan, y, x]


def finalize(desc, min_std):
    desc = desc - desc.mean(axis=(0, 2, 3), keepdims=True)
    std = desc.std(axis=(0, 2, 3), keepdims=True)
    desc = desc / np.where(std > min_std, std, 1.0)
    return desc.reshape(desc.shape[0], -1)


def sliced_wasserstein(a, b, dirs):
    pa = np.sort(a @ dirs.T, axis=0)  # [descriptors, directions]
    pb = np.sort(b @ dirs.T, axis=0)
    return float(np.mean(np.abs(pa - pb)))


def main():
    if len(sys.argv) != 2:
        print("usage: swd_reference.py FOLDER", file=sys.stderr)
        return 2
    folder = sys.argv[1]
    with open(os.path.join(folder, "header.json")) as f:
        h = json.load(f)
    n, c, s = h["n"], h["channels"], h["size"]
    p, per_image, resolutions = h["patch_size"], h["patches_per_image"], h["resolutions"]

    def images(name):
        x = np.fromfile(os.path.join(folder, name), dtype="<f4").astype(np.float64).reshape(n, c, s, s)
        return np.repeat(x, 3, axis=1) if c == 1 else x

    pyr = [laplacian_pyramid(images(name), len(resolutions)) for name in ("a.bin", "b.bin")]
    per_level = []
    for level, res in enumerate(resolutions):
        desc = []
        for which, tag in ((0, "a"), (1, "b")):
            assert pyr[which][level].shape == (n, 3, res, res)
            corners = np.fromfile(os.path.join(folder, "corners_%s_%d.bin" % (tag, level)), dtype="<i4")
            corners = corners.reshape(-1, 2)
            desc.append(finalize(descriptors(pyr[which][level], corners, per_image, p), h["min_std"]))
        dirs = np.fromfile(os.path.join(folder, "directions_%d.bin" % level), dtype="<f4").astype(np.float64)
        dirs = dirs.reshape(-1, 3 * p * p)
        per_level.append(1e3 * sliced_wasserstein(desc[0], desc[1], dirs))
    print(json.dumps({"per_level_x1e3": per_level, "average_x1e3": float(np.mean(per_level))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
