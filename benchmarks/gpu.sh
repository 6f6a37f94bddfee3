#!/usr/bin/env bash
# The GPU rows of docs/speed.md, in one go that fits a 15-minute device lease (about 6 minutes on an H200):
#   bash benchmarks/gpu.sh            (from the repository root, on a machine with CUDA)
# Installs the project without dependencies (the machine has torch), runs the CUDA tests, then dcgan at 64 px,
# batch 128: fp32 eager, bf16, bf16 + compile + channels_last, fp16, each against the plain DCGAN-tutorial loop;
# last, a dcgan run plainly against the same run as a 1-rank torchrun job (docs/scaling-out.md).
set -uo pipefail
pip install -q --no-deps -e . -e plugins/mlp -e plugins/objectives -e plugins/toy-datasets -e plugins/dcgan \
    -e plugins/diffaugment -e plugins/stylegan2 -e plugins/r3gan >/dev/null 2>&1 || echo "install failed"
python -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
timeout 240 python -m pytest -q -p no:cacheprovider -o addopts="" tests/test_speed.py -k cuda 2>&1 | tail -5
run() { timeout 150 python benchmarks/engine_overhead.py --arch dcgan --image-size 64 --batch-size 128 \
        --device cuda --steps 200 --repeats 3 "$@" 2>&1 | tail -4; }
run
run --precision bf16
run --precision bf16 --compile --channels-last
run --precision 16 --channels-last
# Distributed: the same dcgan run plainly and as a 1-rank torchrun job over NCCL (goal: ratio above 0.95)
timeout 240 python benchmarks/distributed_overhead.py --arch dcgan --objective hinge --dataset digits \
    --batch-size 128 --steps 600 --repeats 3 --device cuda --nproc 1 2>&1 | tail -4
# The modern architectures against dcgan at 32 and 64 px, at their default widths (docs/architectures/*.md)
timeout 120 python benchmarks/architectures.py --device cuda --batch-size 64 --steps 50 --repeats 3 2>&1 | tail -9
