#!/usr/bin/env bash
# Mutants the suite once missed (issue 17), each applied alone to a copy-restored file: its named
# test must fail. Exit 1 if any survives. Run by .ci/run after the suite; ~1 min on 2 cores.
set -u
cd "$(dirname "$0")/.."
survived=0
export OMP_NUM_THREADS=1 PYTHONPATH=$PWD
run() {  # file python-replace-old python-replace-new test
    local f=$1 old=$2 new=$3 t=$4 bak log
    bak=$(mktemp) log=$(mktemp)
    cp "$f" "$bak"
    if python3 - "$f" "$old" "$new" <<'PY'
import sys
p, old, new = sys.argv[1:]
s = open(p).read(); assert s.count(old) == 1, (p, old); open(p, 'w').write(s.replace(old, new))
PY
    then :; else echo "CANNOT APPLY  $f: $old"; survived=1; return; fi
    if python -m pytest -q -x -p no:cacheprovider "$t" >"$log" 2>&1; then
        echo "SURVIVED  $f :: $t"; survived=1
    else
        echo "killed    $(grep -m1 -o 'FAILED [^ ]*' "$log")"
    fi
    cp "$bak" "$f"
}
run medssl/evaluation/metrics/hd95_stream.py 'spacing=[sy, sx, sz]' 'spacing=[sx, sy, sz]' \
    tests/test_evaluation/test_volume_dice_hd95.py::test_hd95_in_plane_spacing_order
run medssl/analysis/stats.py 'equal_var=False' 'equal_var=True' \
    tests/test_analysis/test_stats.py::test_welch_unequal_sizes_and_variances_by_hand
run medssl/evaluation/metrics/volume_dice.py 'pred_np = np.where(gt_np == self.ignore_index, 0, pred_np)' 'pass' \
    tests/test_evaluation/test_volume_dice_hd95.py::test_hd95_ignores_voxels_labelled_255
run medssl/analysis/data_efficiency/maths.py 'ref_score = float(np.mean(list(grouped[ref][ref_frac].values())))' \
    'ref_score = max(float(np.mean(list(v.values()))) for v in grouped[ref].values())' \
    tests/test_analysis/test_data_efficiency_protocol.py::test_aei_reference_is_the_largest_fraction_not_the_best_score
exit $survived
