#!/usr/bin/env bash
# The GPU checks and measurements of benchmarks/README.md in one run, for a machine with one CUDA GPU and PyTorch
# installed (the project need not be: it runs from src/). Logs and JSON lines go to $OUT (default ./gpu-results).
# Sections run in the order given, within $BUDGET seconds in all (default 560: one call of a lent machine), each
# command cut at its own limit or at what is left of the budget, whichever comes first.
#
#   bash benchmarks/gpu.sh [bench] [tests] [memory] [metrics] [e2e]   # default: bench tests
set -u
out=${OUT:-gpu-results}
mkdir -p "$out"
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
sections=${*:-bench tests}
deadline=$((SECONDS + ${BUDGET:-560}))  # SECONDS: bash's seconds since the script started

for section in $sections; do
    case $section in bench | tests | memory | metrics | e2e) ;; *)
        echo "benchmarks/gpu.sh: unknown section '$section': expected bench, tests, memory, metrics or e2e" >&2
        exit 2 ;;
    esac
done
if ! python -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
    echo "benchmarks/gpu.sh: no CUDA GPU here (or no PyTorch); run it on a machine with one" >&2
    exit 2
fi
python -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(), flush=True)"

run() {  # name, time limit in s, command...: log to $out/name.log, keep going on failure
    local name=$1 limit=$2 left=$((deadline - SECONDS))
    shift 2
    if ((left < 30)); then
        echo "== $name: not run, the budget is spent"
        return
    fi
    echo "== $name: $*"
    timeout $((limit < left ? limit : left)) "$@" >"$out/$name.log" 2>&1
    echo "   exit $? ($name; ${SECONDS} s since the start)"
    grep -h '^{' "$out/$name.log" >>"$out/results.jsonl"
}

tests() {  # The CUDA variants (training paths, attention kernels, Inception, AMP runs, compiled training).
    SAGAN_TEST_COMPILE=1 run tests 300 python -m pytest -q -p no:cacheprovider -m cuda tests
    [[ -f $out/tests.log ]] && tail -n 3 "$out/tests.log"
}

bench() {
    # The default path (train.compile=auto: compiled, CUDA graphs) in bf16, with the operator counts of the eager
    # step, beside the eager path at dcgan64 batch 256; the reference is DCGAN-only, so celeba128 has no ratio.
    # The two headline figures first: dcgan64 batch 256 against the reference, celeba128 batch 256 against the peak.
    bench=(python -m sagan bench train --device cuda --amp bf16 --ops)
    run auto-dcgan64-b256 240 "${bench[@]}" --preset dcgan64 --batch-size 256 --warmup 10 --steps 30 \
        --compare-reference
    run auto-celeba128-b256 300 "${bench[@]}" --preset celeba128 --batch-size 256 --warmup 10 --steps 20
    run auto-dcgan64-b64 240 "${bench[@]}" --preset dcgan64 --batch-size 64 --warmup 10 --steps 50 --compare-reference
    run auto-celeba128-b64 300 "${bench[@]}" --preset celeba128 --batch-size 64 --warmup 10 --steps 30
    run eager-dcgan64-b256 120 "${bench[@]}" --preset dcgan64 --batch-size 256 --warmup 5 --steps 30 \
        --compare-reference --set train.compile=false
    grep -h 'images/s' "$out"/*.log | grep -v '^{'
}

memory() {
    run attention-memory 300 python benchmarks/attention_memory.py --device cuda --amp bf16
}

metrics() {
    run inception-speed 300 python benchmarks/metrics_speed.py --device cuda --sizes 32 64 --batch-sizes 100 500 \
        --repeats 5 --precision bf16
}

e2e() {
    # Train briefly on the GPU, then a 10k-sample FID / KID / IS through the CLI, with He-initialised random
    # Inception weights (the published file cannot be fetched offline; speed does not depend on the values).
    python -c "import torch; from sagan.metrics import FIDInceptionV3; torch.manual_seed(0); \
s = FIDInceptionV3().state_dict(); \
s = {k: torch.randn(v.shape) * (2 / v[0].numel()) ** 0.5 if v.dim() == 4 else v for k, v in s.items()}; \
torch.save(s, '/tmp/inception-random.pth')"
    run e2e-train 300 python -m sagan train --preset demo --steps 300 --device cuda --amp bf16 --no-progress \
        --out /tmp/e2e-run
    run e2e-evaluate 300 python -m sagan evaluate --checkpoint /tmp/e2e-run --metrics fid,kid,is \
        --num-samples 10000 --reference embedded --inception-weights /tmp/inception-random.pth --batch-size 250 \
        --device cuda --cache-dir /tmp/stats
    run e2e-torchrun 300 python -m torch.distributed.run --nproc_per_node 1 -m sagan train --preset demo --steps 50 \
        --device cuda --no-progress --out /tmp/e2e-ddp
    [[ -f $out/e2e-evaluate.log ]] && tail -n 8 "$out/e2e-evaluate.log"
}

for section in $sections; do
    "$section"
done
