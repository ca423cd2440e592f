#!/usr/bin/env bash
# tools/gpu-check.sh on a bare Debian 12 without a GPU: proves, before a GPU machine is lent, that the check
# builds from .device-deps alone and reports the GPU steps as skipped. A developer's tool (root, debootstrap,
# network to the Debian mirror, the CUDA toolkit in /usr/local/cuda); not part of CI.
#
#   sudo tools/bare-check.sh [--fresh]
#
#  1. a minbase bookworm root in $BARE_ROOT (/var/tmp/cudagan-bare-root), from the mirror of this machine's apt
#     sources, with only g++, cmake and ninja-build added; kept and reused (--fresh builds it again);
#  2. in a private mount namespace: /proc, /sys, /dev, and the host's CUDA toolkit read-only at the same path;
#  3. a copy of the checkout (git ls-files -co --exclude-standard: no build dirs) and .device-deps/ (fetched with
#     ../shared/tools/device-deps.sh fetch when absent) in /src/cudagan, a fresh /opt/deps;
#  4. inside the chroot: GPU_CHECK_ALLOW_NO_GPU=1 GPU_CHECK_TIME_SCALE=$BARE_TIME_SCALE (6: 2 cores, not 16)
#     bash tools/gpu-check.sh, with $OUT copied back to $BARE_OUT (/tmp/bare-check-out) and checked as the
#     device tool would take it (at most 8 files, each under 16 MiB).
# Everything is unmounted on exit. Exit status: gpu-check's, or 1 when $OUT would not come back whole.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bare=${BARE_ROOT:-/var/tmp/cudagan-bare-root}
out=${BARE_OUT:-/tmp/bare-check-out}
scale=${BARE_TIME_SCALE:-6}
fresh=0
case ${1:-} in
--fresh) fresh=1 ;;
"") ;;
*) sed -n '2,16p' "$0"; exit 2 ;;
esac
die() { echo "bare-check: $*" >&2; exit 1; }
((EUID == 0)) || die "needs root (debootstrap, chroot, mount)"

# Mounts are made in a mount namespace of our own, so nothing can leak into the host's mount table even if the
# trap below does not get to run.
if [[ -z ${BARE_CHECK_IN_NS:-} ]]; then
  exec unshare --mount --propagation private env BARE_CHECK_IN_NS=1 bash "$0" "$@"
fi

command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install debootstrap"
cuda_link=/usr/local/cuda
cuda=$(readlink -f "$cuda_link")
[[ -x $cuda/bin/nvcc ]] || die "no CUDA toolkit at $cuda_link"

# The Debian mirror this machine uses (deb822 .sources or one-line sources.list), for bookworm main.
mirror=${BARE_MIRROR:-$(
  {
    awk 'BEGIN { RS = ""; FS = "\n" }
      { u = ""; s = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { u = $i; sub(/^URIs:[ \t]*/, "", u); sub(/[ \t].*/, "", u) }
          if ($i ~ /^Suites:/) s = $i }
        if (u != "" && s ~ /[ \t]bookworm([ \t]|$)/) print u }' /etc/apt/sources.list.d/*.sources 2>/dev/null
    awk '$1 == "deb" && $3 == "bookworm" { print $2 }' /etc/apt/sources.list 2>/dev/null
  } | head -1
)}
mirror=${mirror:-http://deb.debian.org/debian}

mounts=() # what we mounted, unmounted in reverse on exit
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount -R "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" 2>/dev/null ||
      echo "bare-check: could not unmount ${mounts[i]}" >&2
  done
  mounts=()
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP
mnt() { # mnt TARGET MOUNT-ARGS...
  mkdir -p "$1" && mount "${@:2}" "$1" && mounts+=("$1")
}
mount_all() {
  mnt "$bare/proc" -t proc proc || die "mounting /proc"
  mnt "$bare/sys" -t sysfs -o ro sysfs || mnt "$bare/sys" --rbind /sys || die "mounting /sys"
  mnt "$bare/dev" --rbind /dev || die "mounting /dev"
}
t0=$SECONDS

# ---------------------------------------------------------------------------------------------- 1. the root
if ((fresh)) || [[ ! -f $bare/.cudagan-ready ]]; then
  ! findmnt -rn -o TARGET | grep -qF "$bare/" || die "something is still mounted under $bare"
  rm -rf "$bare"
  echo "== debootstrap bookworm (minbase) from $mirror into $bare"
  debootstrap --variant=minbase bookworm "$bare" "$mirror" >/tmp/bare-check-debootstrap.log 2>&1 ||
    { tail -20 /tmp/bare-check-debootstrap.log; die "debootstrap failed (log /tmp/bare-check-debootstrap.log)"; }
  cp -L /etc/resolv.conf "$bare/etc/resolv.conf"
  mount_all
  echo "== apt-get install g++ cmake ninja-build in the root"
  chroot "$bare" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive sh -c \
    'apt-get update -qq && apt-get install -y -qq --no-install-recommends g++ cmake ninja-build && apt-get clean' \
    >/tmp/bare-check-apt.log 2>&1 || { tail -20 /tmp/bare-check-apt.log; die "apt-get in the root failed"; }
  # shellcheck disable=SC2016 # dpkg-query's format, not the shell's
  chroot "$bare" dpkg-query -W -f '${Package} ${Version}\n' >"$bare/.cudagan-ready"
  cleanup
  echo "   root ready in $((SECONDS - t0)) s: $(wc -l <"$bare/.cudagan-ready") packages"
else
  echo "== reusing $bare (--fresh to build it again)"
fi
for p in g++ cmake ninja-build; do grep -q "^$p " "$bare/.cudagan-ready" || die "$p missing in $bare: use --fresh"; done

# ---------------------------------------------------------------------------------------------- 2. mounts
mount_all
mnt "$bare$cuda" --bind -o ro "$cuda" || die "binding $cuda"
mount -o remount,bind,ro "$bare$cuda" || die "making $bare$cuda read-only"
if [[ -L $cuda_link ]]; then
  ln -sfn "$(readlink "$cuda_link")" "$bare$cuda_link"
elif [[ $cuda != "$cuda_link" ]]; then
  mnt "$bare$cuda_link" --bind -o ro "$cuda_link" || die "binding $cuda_link"
fi

# ---------------------------------------------------------------------------------------------- 3. the checkout
cd "$repo" || die "no $repo"
if [[ ! -f .device-deps/unpack.sh ]]; then
  echo "== fetching .device-deps"
  bash "$repo/../shared/tools/device-deps.sh" fetch >/tmp/bare-check-fetch.log 2>&1 || die "device-deps.sh fetch failed"
fi
work=$bare/src  # /src in the chroot
rm -rf "$work" "$bare/opt/deps" "$bare/tmp/gpu-check"
mkdir -p "$work/cudagan" "$work/out"
# Tracked and untracked files that git does not ignore, as the device tool sends them (files deleted in the
# work tree are left out), plus the ignored .device-deps/.
git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
  tar --null -T - -cf - | tar -xf - -C "$work/cudagan" || die "copying the checkout"
tar -cf - .device-deps | tar -xf - -C "$work/cudagan" || die "copying .device-deps"
commit="$(git rev-parse --short HEAD)$([[ -n $(git status --porcelain --untracked-files=no) ]] && echo +dirty)"
echo "== checkout $commit copied: $(du -sh "$work/cudagan" | cut -f1); CUDA $cuda read-only"

# ---------------------------------------------------------------------------------------------- 4. gpu-check
echo "== tools/gpu-check.sh in the chroot (GPU_CHECK_TIME_SCALE=$scale)"
chroot "$bare" /usr/bin/env -i PATH="$cuda_link/bin:/usr/sbin:/usr/bin:/sbin:/bin" HOME=/root LANG=C.UTF-8 \
  OUT=/src/out GPU_CHECK_ALLOW_NO_GPU=1 GPU_CHECK_TIME_SCALE="$scale" GPU_CHECK_COMMIT="$commit" \
  bash /src/cudagan/tools/gpu-check.sh 2>&1 | tee /tmp/bare-check-run.log | sed -u 's/^/   | /'
rc=${PIPESTATUS[0]}
rm -rf "$out" && mkdir -p "$out" && cp -a "$work/out/." "$out/"

# What the device tool would bring back: at most 8 plain files, each under 16 MiB, no folders.
n=$(find "$out" -mindepth 1 | wc -l)
big=$(find "$out" -type f -size +16M -printf '%f ')
dirs=$(find "$out" -mindepth 1 ! -type f -printf '%f ')
sed -n '/^----- summary -----$/,$p' /tmp/bare-check-run.log
echo "----- bare-check -----"
echo "gpu-check exit $rc in $((SECONDS - t0)) s (full output /tmp/bare-check-run.log); \$OUT copied to $out:"
(cd "$out" && find . -type f -printf '  %8s bytes  %f\n' | sort -k3)
if ((n > 8)) || [[ -n $big || -n $dirs ]]; then
  echo "bare-check: \$OUT would not come back whole: $n entries (8 at most), over 16 MiB: ${big:-none}, not files: ${dirs:-none}"
  ((rc)) || rc=1
fi
echo "bare-check: $( ((rc == 0)) && echo PASS || echo "FAIL (exit $rc)")"
exit "$rc"
