#!/bin/sh
# Installs the dependencies, builds muond and runs its main job on the embedded default: a small
# CNN on scikit-learn's handwritten digits (1,797 real 8x8 images) trained by 4 PyTorch trainers
# beside a 4-rank muond on this machine (muond launch, local gradient mode, CPU), once with Polar
# Express and once with NS5, and by torch's AdamW in-process on the same model, data and schedule.
# Rank 0 prints the test loss and accuracy as it trains; the curves go to out/digits.png
# (gnuplot), the CSVs beside it; the last lines put muond's test accuracy beside AdamW's.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
mkdir -p out
export MUOND_LOG="${MUOND_LOG:-warn}" # the trainers' lines, not the daemon's progress log
python=/usr/bin/python3
digits=client/python/examples/digits.py
progress() { awk '!/^step/ || $2 == 1 || $2 % 50 == 0'; }

for method in polar-express ns5; do
    echo "== muond $method: 4 ranks, 4 PyTorch trainers, 300 steps"
    ./build/launcher/muond launch -n 4 --from-model "$digits:make_model" --method "$method" \
        -- "$python" "$digits" --csv "out/digits-$method.csv" | progress | tee "out/digits-$method.txt"
done
echo "== torch AdamW in-process, 300 steps"
# Through muond blas: the same OpenBLAS kernels as the trainers muond launch started.
PYTHONPATH=client/python ./build/launcher/muond blas -- "$python" "$digits" --optimizer adamw --csv out/digits-adamw.csv |
    progress | tee out/digits-adamw.txt

gnuplot <<'PLOT'
set terminal pngcairo size 1100,480 noenhanced
set output 'out/digits.png'
set datafile separator ','
set multiplot layout 1,2 title 'digits CNN (sklearn), 4 trainers, global batch 128'
set xlabel 'step'
set key top right
set logscale y
set ylabel 'test loss (cross entropy)'
plot 'out/digits-polar-express.csv' using 1:3 skip 1 with lines lw 2 title 'muond Polar Express', \
     'out/digits-ns5.csv' using 1:3 skip 1 with lines lw 2 title 'muond NS5', \
     'out/digits-adamw.csv' using 1:3 skip 1 with lines lw 2 title 'torch AdamW'
unset logscale y
set key bottom right
set ylabel 'test accuracy'
set yrange [0.5:1]
plot 'out/digits-polar-express.csv' using 1:4 skip 1 with lines lw 2 title 'muond Polar Express', \
     'out/digits-ns5.csv' using 1:4 skip 1 with lines lw 2 title 'muond NS5', \
     'out/digits-adamw.csv' using 1:4 skip 1 with lines lw 2 title 'torch AdamW'
unset multiplot
PLOT
echo "curves: out/digits.png"
for run in polar-express ns5 adamw; do
    grep '^digits:' "out/digits-$run.txt"
done
