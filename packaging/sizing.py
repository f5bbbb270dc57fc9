"""EMR Serverless worker sizes, and whether the template's sizing parameters make valid workers.

A worker of N vCPU may have only certain memory sizes (docs/control-plane.md cites EMR's table). The
driver's worker holds its JVM heap plus EMR's overhead; an executor's holds its heap plus
ExecutorMemoryOverhead, where the Python workers run. template.yaml states the same sizes as Rules, which
CloudFormation checks at deploy time; this module lets `deploy.py` check them before anything is built
(tests/unit/test_deploy.py holds the two equal).
"""

from __future__ import annotations

from collections.abc import Mapping

# Memory (GB) a worker of each vCPU count may have.
WORKER_MEMORY_GB = {
    1: range(2, 9),
    2: range(4, 17),
    4: range(8, 31),
    8: range(16, 61, 4),
    16: range(32, 121, 8),
}
MIN_HEAP_GB = 1  # the executor JVM must keep some heap beside the Python workers


def gigabytes(value: str) -> int | None:
    """`16g` -> 16; None for anything else."""
    number = value.removesuffix("g")
    return int(number) if value.endswith("g") and number.isdigit() else None


def _worker_problem(role: str, cores: str, memory: str) -> str | None:
    vcpu = int(cores) if cores.isdigit() else None
    sizes = WORKER_MEMORY_GB.get(vcpu) if vcpu is not None else None
    if sizes is None:
        return f"{role}Cores must be one of {', '.join(map(str, WORKER_MEMORY_GB))}, got {cores!r}"
    if gigabytes(memory) not in sizes:
        step = f" in steps of {sizes.step}g" if sizes.step > 1 else ""
        return (
            f"{role}WorkerMemory must be {sizes.start}g to {sizes[-1]}g{step} for a "
            f"{vcpu}-vCPU worker (EMR Serverless' worker sizes), got {memory!r}"
        )
    return None


def problems(parameters: Mapping[str, str]) -> list[str]:
    """What is wrong with the sizing parameters, each in words that say what to set instead."""
    found = [
        problem
        for role in ("Driver", "Executor")
        if (problem := _worker_problem(role, parameters[f"{role}Cores"], parameters[f"{role}WorkerMemory"]))
    ]
    worker, overhead = (
        gigabytes(parameters["ExecutorWorkerMemory"]),
        gigabytes(parameters["ExecutorMemoryOverhead"]),
    )
    if overhead is None:
        found.append(
            "ExecutorMemoryOverhead must be a whole number of GB like 3g, "
            f"got {parameters['ExecutorMemoryOverhead']!r}"
        )
    elif worker is not None and worker - overhead < MIN_HEAP_GB:
        found.append(
            f"ExecutorMemoryOverhead {overhead}g leaves the executor's JVM less than {MIN_HEAP_GB}g of its "
            f"{worker}g worker: lower it, or raise ExecutorWorkerMemory"
        )
    return found
