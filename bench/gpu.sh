#!/usr/bin/env bash
# Every GPU figure of BENCHMARKS.md in one call, on a machine with an NVIDIA GPU, Python 3.12
# and JAX but no Ray, Keras, Optuna or TensorFlow and no package index.
#
#   bench/gpu.sh [--bundle DIR] [--site DIR] [--out DIR] [--rows 1,6,9,10,11]
#                [--install-only] [--force-install] [--dry-run]
#
# 1. Install: where `import ray, keras, optuna` fails (or with --force-install), unpack the
#    bundle DIR (default .gpu-bundle: what ../shared/tools/gpu-node-bundle.sh or
#    tools/wheelhouse writes; at most 64 MiB, so it can travel with the working tree) into
#    --site (default /tmp/sersweep-site): its ray.tar.xz, if any, then its wheels with
#    `pip install --no-index --no-deps --target`; PYTHONPATH then starts with the site.
# 2. Measure: each row with its own time limit, 8 minutes together: 1 (train step), 6 (trials
#    packed per GPU), 9 (source-size epoch), 10 (an sgan_av sweep at source size, shortened
#    to 8 trials of 3 epochs) and 11 (resident vs streamed corpus, shortened to 100 rows per
#    speaker and 2 rounds); its log and JSON line go to
#    --out (default $OUT, else bench/gpu-out) as rowN.log and rowN.json, and one JSON line
#    per row is printed as it ends.
#
# --dry-run prints the plan (install or not, each row's command and limit) as one JSON line
# and runs nothing. Errors: one line on stderr, exit 2.
set -uo pipefail
cd "$(dirname "$0")/.."

bundle=.gpu-bundle
site=/tmp/sersweep-site
out=${OUT:-bench/gpu-out}
rows=1,6,9,10,11
install_only=0
force_install=0
dry_run=0
python=${PYTHON:-python3}

fail() {
    echo "bench/gpu.sh: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
        --bundle | --site | --out | --rows)
            [ $# -ge 2 ] || fail "$1 needs a value"
            case $1 in
                --bundle) bundle=$2 ;;
                --site) site=$2 ;;
                --out) out=$2 ;;
                --rows) rows=$2 ;;
            esac
            shift 2
            ;;
        --install-only) install_only=1; shift ;;
        --force-install) force_install=1; shift ;;
        --dry-run) dry_run=1; shift ;;
        *) fail "unknown argument '$1' (expected --bundle, --site, --out, --rows, --install-only, --force-install or --dry-run)" ;;
    esac
done

# row -> seconds it may take, and its command (Keras on JAX: the node has no TensorFlow)
# Row 11 is shortened (100 rows per speaker at 1x, 10-step memory runs, 2 rounds of cold
# speed runs): its 13 short sweeps would not fit at the CPU recording's sizes. The limits
# are estimates that have not met a GPU yet
declare -A LIMIT=([1]=60 [6]=90 [9]=60 [10]=120 [11]=150)
declare -A COMMAND=(
    [1]="$python bench/train_step.py --backends jax --repeats 3"
    [6]="$python bench/gpu_packing.py --backend jax --packings 1,4 --trials 4 --epochs 2"
    [9]="$python bench/source_size.py --backend jax --full-epoch"
    [10]="$python bench/gpu_sweep.py --trials 8 --epochs 3"
    [11]="$python bench/scale.py --per-speaker 100 --steps 10 --repeats 2"
)
IFS=, read -r -a chosen <<<"$rows"
for row in "${chosen[@]}"; do
    [ -n "${LIMIT[$row]:-}" ] || fail "--rows: unknown row '$row' (expected some of 1,6,9,10,11)"
done

needs_install=$force_install
if [ "$needs_install" = 0 ] && ! "$python" -c "import ray, keras, optuna" 2>/dev/null; then
    needs_install=1
fi

if [ "$dry_run" = 1 ]; then
    "$python" - "$needs_install" "$bundle" "$site" "$out" "${chosen[@]}" <<'PY' || exit 2
import json, sys
install, bundle, site, out, *rows = sys.argv[1:]
print(json.dumps({"install": install == "1", "bundle": bundle, "site": site, "out": out,
                  "rows": rows}))
PY
    for row in "${chosen[@]}"; do
        printf '{"row": "%s", "limit_s": %s, "command": "%s"}\n' "$row" "${LIMIT[$row]}" "${COMMAND[$row]}"
    done
    exit 0
fi

if [ "$needs_install" = 1 ]; then
    [ -d "$bundle" ] || fail "$bundle: no bundle to install Ray, Keras and Optuna from (build one with ../shared/tools/gpu-node-bundle.sh DIR or tools/wheelhouse DIR and pass --bundle DIR)"
    compgen -G "$bundle/*.whl" >/dev/null || [ -f "$bundle/ray.tar.xz" ] || fail "$bundle: holds no wheels and no ray.tar.xz"
    mkdir -p "$site" || fail "$site: cannot create the install folder"
    if [ -f "$bundle/ray.tar.xz" ]; then
        tar xJf "$bundle/ray.tar.xz" -C "$site" || fail "$bundle/ray.tar.xz: cannot unpack into $site"
    fi
    if compgen -G "$bundle/*.whl" >/dev/null; then
        "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$site" "$bundle"/*.whl >"$site/.pip.log" 2>&1 ||
            fail "pip could not install $bundle's wheels into $site (see $site/.pip.log)"
    fi
    echo "{\"installed\": \"$bundle\", \"site\": \"$site\"}"
fi
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
export KERAS_BACKEND=jax RAY_AUTH_MODE=token RAY_USAGE_STATS_ENABLED=0 PYTHONUNBUFFERED=1
if [ "$install_only" = 1 ]; then
    exit 0
fi
"$python" -c "import ray, keras, optuna" 2>/dev/null ||
    fail "Ray, Keras and Optuna are still not importable with PYTHONPATH=$PYTHONPATH"

mkdir -p "$out" || fail "$out: cannot create the output folder"
for row in "${chosen[@]}"; do
    started=$(date +%s)
    timeout "${LIMIT[$row]}" ${COMMAND[$row]} >"$out/row$row.log" 2>&1
    status=$?
    seconds=$(($(date +%s) - started))
    last=$(grep '^{' "$out/row$row.log" | tail -1)
    if [ "$status" = 0 ] && [ -n "$last" ]; then
        echo "$last" >"$out/row$row.json"
        echo "{\"row\": \"$row\", \"seconds\": $seconds, \"result\": $last}"
    else
        echo "{\"row\": \"$row\", \"seconds\": $seconds, \"exit\": $status, \"result\": null}"
    fi
done
