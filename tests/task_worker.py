"""A worker process for the task tests: claims and completes tasks over HTTP until told to stop.

python -m tests.task_worker URL TOKEN OUT_FILE [--hold SECONDS] [--lease SECONDS] [--idle-exit SECONDS] [--batch N]

Each completed task id is appended to OUT_FILE (one line, flushed), so the test can count completions per worker.
``--hold`` makes the worker sit on each claimed task (to be killed mid-task); ``--idle-exit`` ends it after that many
seconds without work; ``--batch`` claims up to N tasks at a time and completes them in one call (claim_batch,
update_batch).
"""

from __future__ import annotations

import argparse
import time

import httpx


def one_at_a_time(client: httpx.Client, args: argparse.Namespace) -> list[str]:
    """Claim one task and complete it: the ids completed (none when nothing was claimed)."""
    claimed = client.post("/agora/task/claim", json={"wait": 1, "lease_seconds": args.lease}).json()
    if claimed.get("task") is None:
        return []
    task, lease = claimed["task"], claimed["lease"]
    if args.hold:
        print(f"claimed {task['task_id']}", flush=True)
        time.sleep(args.hold)
    done = client.post(
        "/agora/task/update",
        json={"task_id": task["task_id"], "lease_token": lease["token"], "status": "completed", "result": {"by": args.token[-6:]}},
    )
    return [task["task_id"]] if done.status_code == 200 else []


def batched(client: httpx.Client, args: argparse.Namespace) -> list[str]:
    """Claim up to ``--batch`` tasks and complete them in one call: the ids whose completion was accepted."""
    claims = client.post("/agora/task/claim_batch", json={"wait": 1, "lease_seconds": args.lease, "max_tasks": args.batch}).json()["claims"]
    if not claims:
        return []
    updates = [
        {"task_id": c["task"]["task_id"], "lease_token": c["lease"]["token"], "status": "completed", "result": {"by": args.token[-6:]}}
        for c in claims
    ]
    done = client.post("/agora/task/update_batch", json={"updates": updates})
    return [r["task_id"] for r in done.json()["results"] if r["error"] is None] if done.status_code == 200 else []


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("out")
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--idle-exit", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    work = batched if args.batch > 1 else one_at_a_time
    headers = {"Authorization": f"Bearer {args.token}"}
    with httpx.Client(base_url=args.url, headers=headers, timeout=30) as client, open(args.out, "a") as out:
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < args.idle_exit:
            completed = work(client, args)
            if not completed:
                continue
            idle_since = time.monotonic()
            out.write("".join(task_id + "\n" for task_id in completed))
            out.flush()


if __name__ == "__main__":
    main()
