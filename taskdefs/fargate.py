"""The task sizes Fargate offers (Linux): cpu units and the memory (MiB) each allows.

From the ECS developer guide, "Task CPU and memory"; RegisterTaskDefinition refuses any
other pair, and the API model cannot say so.
"""

GIB = 1024


def _gib_steps(first: int, last: int, step: int) -> tuple[int, ...]:
    return tuple(gib * GIB for gib in range(first, last + 1, step))


MEMORY_FOR_CPU: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: _gib_steps(1, 4, 1),
    1024: _gib_steps(2, 8, 1),
    2048: _gib_steps(4, 16, 1),
    4096: _gib_steps(8, 30, 1),
    8192: _gib_steps(16, 60, 4),
    16384: _gib_steps(32, 120, 8),
}


def size_problem(cpu: object, memory: object) -> str | None:
    """Why Fargate would refuse this cpu/memory pair, or None when it offers it."""
    if cpu not in MEMORY_FOR_CPU:
        return f"cpu {cpu!r} is not a Fargate size (one of {', '.join(map(str, MEMORY_FOR_CPU))})"
    allowed = MEMORY_FOR_CPU[cpu]
    if memory in allowed:
        return None
    if len(allowed) <= 4:
        offered = f"{', '.join(map(str, allowed[:-1]))} or {allowed[-1]} MiB"
    else:
        offered = f"{allowed[0]} to {allowed[-1]} MiB in steps of {allowed[1] - allowed[0]}"
    return f"Fargate has no {cpu} cpu / {memory!r} MiB task: with {cpu} cpu, memory is {offered}"
