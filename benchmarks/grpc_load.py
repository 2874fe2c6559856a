"""Load generation over gRPC: A2A SendMessage calls from a few Python processes, each an asyncio loop with one
channel and ``connections`` calls kept in flight, measured like ``load.PythonLoad`` measures HTTP (same processes,
same percentiles), so the two can stand side by side."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from dataclasses import dataclass

from .load import PYTHON_PROCESSES, LoadResult, Shape, measured


@dataclass(frozen=True)
class GrpcCall:
    """One A2A 1.0 SendMessage over gRPC to ``target`` (host:port), for the agent ``tenant``."""

    target: str
    tenant: str
    message_id: str
    key: str


@dataclass(frozen=True)
class _Job:
    call: GrpcCall
    connections: int
    start_at: float
    stop_at: float


def _worker_main(job: _Job) -> tuple[int, list[float], float]:
    return asyncio.run(_worker(job))


async def _worker(job: _Job) -> tuple[int, list[float], float]:
    import grpc.aio

    from a2a.types import a2a_pb2 as pb
    from a2a.types import a2a_pb2_grpc as a2a_grpc

    latencies: list[float] = []
    errors = 0
    message = pb.Message(message_id=job.call.message_id, role=pb.Role.ROLE_USER, parts=[pb.Part(text="hello")])
    request = pb.SendMessageRequest(tenant=job.call.tenant, message=message)
    metadata = (("authorization", f"Bearer {job.call.key}"), ("a2a-version", "1.0"))
    async with grpc.aio.insecure_channel(job.call.target) as channel:
        stub = a2a_grpc.A2AServiceStub(channel)

        async def loop() -> None:
            nonlocal errors
            while time.time() < job.stop_at:
                t0 = time.perf_counter()
                try:
                    answer = await stub.SendMessage(request, metadata=metadata, timeout=30)
                    errors += answer.task.status.state != pb.TaskState.TASK_STATE_COMPLETED
                except grpc.aio.AioRpcError:
                    errors += 1
                latencies.append(time.perf_counter() - t0)

        await asyncio.sleep(max(0.0, job.start_at - time.time()))
        await asyncio.gather(*(loop() for _ in range(job.connections)))
    return errors, latencies, time.time()


class GrpcLoad:
    def __init__(self, processes: int = PYTHON_PROCESSES):
        self.processes = processes
        self.name = f"python gRPC ({processes} processes, asyncio, a channel each)"

    def run(self, call: GrpcCall, shape: Shape) -> LoadResult:
        procs = min(self.processes, shape.connections)
        start = time.time() + 0.5
        jobs = [_Job(call, shape.connections // procs + (w < shape.connections % procs), start, start + shape.seconds) for w in range(procs)]
        with multiprocessing.get_context("spawn").Pool(procs) as pool:  # spawn: grpc does not survive a fork
            outcomes = pool.map(_worker_main, jobs)
        return measured(self.name, shape, start, outcomes)
