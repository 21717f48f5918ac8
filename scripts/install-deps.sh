#!/bin/sh
# Installs muond's build and test dependencies from Debian 12's archive.
# Idempotent: a second run with everything present does no network work.
set -eu

PACKAGES="build-essential cmake pkg-config
  libopenmpi-dev openmpi-bin
  libscalapack-openmpi-dev
  libhwloc-dev
  libcriterion-dev
  libopenblas-dev liblapacke-dev libdnnl-dev
  libcjson-dev
  libxxhash-dev
  gnuplot-nox
  slurm-wlm slurmctld slurmd slurm-client munge procps
  clang libclang-rt-14-dev
  python3 python3-torch python3-numpy python3-sklearn python3-scipy wamerican"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing:$missing; run as root (or with sudo)" >&2
    exit 1
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing
