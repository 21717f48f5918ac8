#!/bin/sh
# Installs the dependencies, builds muond and runs its main job on the embedded default: the
# example MLP trained by 4 example trainers beside a 4-rank muond on this machine, once with
# each of Polar Express, NS5 and AdamW (200 steps each). Rank 0's loss is printed as it falls;
# the three held-out loss curves are drawn into out/loss.png (gnuplot), with the CSVs beside.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
mkdir -p out
export MUOND_LOG="${MUOND_LOG:-warn}" # the loss lines, not the daemon's progress log
for method in polar-express ns5 adamw; do
    echo "== $method: 4 ranks, 4 trainers, 200 steps"
    ./scripts/train-example.sh --method "$method" --steps 200 --ranks 4 \
        --csv "out/loss-$method.csv" | awk 'NR <= 3 || NR % 25 == 0'
done
gnuplot <<'PLOT'
set terminal pngcairo size 900,560 noenhanced
set output 'out/loss.png'
set datafile separator ','
set key top right
set logscale y
set xlabel 'step'
set ylabel 'held-out MSE'
set title 'muond: example MLP, 4 ranks (local gradients)'
plot 'out/loss-polar-express.csv' using 1:3 skip 1 with lines lw 2 title 'Polar Express', \
     'out/loss-ns5.csv' using 1:3 skip 1 with lines lw 2 title 'NS5 (Jordan)', \
     'out/loss-adamw.csv' using 1:3 skip 1 with lines lw 2 title 'AdamW'
PLOT
echo "loss curves: out/loss.png"
for method in polar-express ns5 adamw; do
    tail -1 "out/loss-$method.csv" | awk -F, -v m="$method" \
        '{ printf "%-14s step %s: held-out loss %s\n", m, $1, $3 }'
done
