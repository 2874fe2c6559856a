"""A worker process for the task tests: claims and completes tasks over HTTP until told to stop.

python -m tests.task_worker URL TOKEN OUT_FILE [--hold SECONDS] [--lease SECONDS] [--idle-exit SECONDS]

Each completed task id is appended to OUT_FILE (one line, flushed), so the test can count completions per worker.
``--hold`` makes the worker sit on each claimed task (to be killed mid-task); ``--idle-exit`` ends it after that many
seconds without work.
"""

from __future__ import annotations

import argparse
import time

import httpx


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("out")
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--idle-exit", type=float, default=3.0)
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {args.token}"}
    with httpx.Client(base_url=args.url, headers=headers, timeout=30) as client, open(args.out, "a") as out:
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < args.idle_exit:
            claimed = client.post("/agora/task/claim", json={"wait": 1, "lease_seconds": args.lease}).json()
            if claimed.get("task") is None:
                continue
            idle_since = time.monotonic()
            task, lease = claimed["task"], claimed["lease"]
            if args.hold:
                print(f"claimed {task['task_id']}", flush=True)
            if args.hold:
                time.sleep(args.hold)
            done = client.post(
                "/agora/task/update",
                json={"task_id": task["task_id"], "lease_token": lease["token"], "status": "completed", "result": {"by": args.token[-6:]}},
            )
            if done.status_code == 200:
                out.write(task["task_id"] + "\n")
                out.flush()


if __name__ == "__main__":
    main()
