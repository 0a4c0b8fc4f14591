#!/usr/bin/env bash
# make setup-podman: Debian's podman (a drop-in `docker` command line), runc and debootstrap, and the
# engine settings that let podman run containers on hosts like the kit's CI machines (cgroup v1, tight
# ulimits): runc instead of crun, container ulimits the host allows. Needs root; changes nothing that
# is already set (an existing /etc/containers/containers.conf is left as it is).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "setup-podman: run as root (it installs Debian packages and writes /etc/containers/containers.conf)" >&2
  exit 2
fi
missing=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" || { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; }
fi
conf=/etc/containers/containers.conf
if [ ! -s "$conf" ]; then
  mkdir -p /etc/containers
  cat > "$conf" <<'CONF'
# written by trashseg's make setup-podman: runc (crun cannot set limits or cgroups on cgroup-v1 hosts)
# and container ulimits that the host allows
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
CONF
  echo "setup-podman: wrote $conf"
fi
podman --version
