#!/usr/bin/env bash
# make docker-base: a base image for the kit's Dockerfile made from Debian's packages alone, with no
# container registry: debootstrap a minimal bookworm (Python 3.11 with venv, make, git, CA certificates,
# useradd), then import the tree as an image. For air-gapped hosts or hosts without a registry mirror:
#   make docker-base DOCKER=podman && make docker-build DOCKER=podman BASE_IMAGE=trashseg-base:bookworm
# Variables: DOCKER (docker|podman), TAG (the image), DEBIAN_MIRROR (default: the host's apt mirror).
set -euo pipefail
docker=${DOCKER:-docker}
tag=${TAG:-trashseg-base:bookworm}
mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then  # the host's own Debian mirror, as apt is configured
  mirror=$(sed -n 's/^URIs:[[:space:]]*\(\S*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
  mirror=${mirror:-$(sed -n 's/^deb[[:space:]]\+\(\S*\/debian\)[[:space:]]\+bookworm[[:space:]].*/\1/p' /etc/apt/sources.list 2>/dev/null | head -n 1)}
  mirror=${mirror:-http://deb.debian.org/debian}
fi
for tool in debootstrap "$docker"; do
  command -v "$tool" >/dev/null || { echo "docker-base: $tool not found (make setup-podman installs podman and debootstrap)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "docker-base: debootstrap needs root" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
echo "docker-base: debootstrap bookworm from $mirror"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,make,git,passwd \
  bookworm "$work/rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 \
  || { tail -n 20 "$work/debootstrap.log" >&2; echo "docker-base: debootstrap failed" >&2; exit 1; }
rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/*
tar -C "$work/rootfs" -c . | "$docker" import --change 'CMD ["/bin/bash"]' - "$tag" > /dev/null
size=$("$docker" image inspect --format '{{.Size}}' "$tag")
echo "docker-base: $tag ($((size / 1000000)) MB, Python $(chroot "$work/rootfs" python3 -c 'import sys; print(sys.version.split()[0])')) in $(( $(date +%s) - start )) s"
