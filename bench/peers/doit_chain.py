"""doit: a chain of N trivial dependent tasks run in-process; prints {"run_s": seconds}.

Same method as shared/reference/peers.md §B.3 (the marginal cost per step removes start-up).
"""

import json
import sys
import tempfile
import time

from doit.cmd_base import ModuleTaskLoader
from doit.doit_cmd import DoitMain

N = int(sys.argv[1])


def make_tasks(n):
    def task_gen():
        for i in range(n):
            yield {
                "name": f"s{i}",
                "actions": [(lambda: True)],
                "task_dep": [f"chain:s{i - 1}"] if i else [],
                "verbosity": 0,
            }

    return {
        "task_chain": task_gen,
        "DOIT_CONFIG": {"dep_file": ":memory:", "backend": "json", "verbosity": 0},
    }


namespace = make_tasks(N)
with tempfile.TemporaryDirectory() as tmp:
    started = time.perf_counter()
    code = DoitMain(ModuleTaskLoader(namespace)).run(["--db-file", f"{tmp}/doit.json", "-a"])
    elapsed = time.perf_counter() - started
if code != 0:
    sys.exit(f"doit failed with exit code {code}")
print(json.dumps({"run_s": elapsed}))
