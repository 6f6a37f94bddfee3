import os

# Tests train tiny models, sometimes in several `gan` subprocesses at once: one intra-op thread
# each is faster than oversubscribed thread pools, which run 3-10x slower on a busy 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")
