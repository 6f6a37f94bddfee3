"""One process of a distributed test job, started by torchrun from tests/test_distributed.py.

argv[1]: JSON {"out": run folder, "dump": folder for this rank's weights, "new": settings of a new run, or
"resume": {"steps": N}}. Each rank trains through the public API, then saves its own networks' state to
dump/rank-R.pt (outside the run folder). Ranks other than 0 run under an audit hook that fails the job if they
write, make, rename, remove or list anything in the run folder (reading the run's config and
checkpoint to resume is theirs to do).
"""
import json
import os
import sys

import torch

import gan_registry as gr

job = json.loads(sys.argv[1])
out, rank = os.path.realpath(job["out"]), int(os.environ["RANK"])
WRITES = {"os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "os.truncate", "shutil.rmtree",
          "os.scandir", "os.listdir"}  # listing too: what a rank lists, it is about to tidy


def _in_run_folder(path) -> bool:
    try:
        return os.path.realpath(os.fsdecode(path)).startswith(out)
    except (TypeError, ValueError):
        return False


def _audit(event, args):
    if event == "open" and args and _in_run_folder(args[0]):
        mode, flags = args[1], args[2] if len(args) > 2 else 0
        writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & (os.O_WRONLY | os.O_RDWR))
        if writes:
            raise RuntimeError(f"rank {rank} opened {args[0]} to write")
    elif event in WRITES and args and _in_run_folder(args[0]):
        raise RuntimeError(f"rank {rank}: {event} {args[0]}")


if rank > 0:
    sys.addaudithook(_audit)

if "new" in job:
    run = gr.Run.new(**job["new"], out=job["out"])
    run.train()
else:
    run = gr.Run.open(job["out"])
    run.train(**job["resume"])
trainer = run._trainer
torch.save({"models": trainer.models.state_dict(), "step": trainer.step,
            "optimizers": {p.name: p.optimizer.state_dict()["state"] for p in trainer.phases}},
           os.path.join(job["dump"], f"rank-{rank}.pt"))
