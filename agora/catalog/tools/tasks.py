"""agora.task.*"""

from datetime import date

from agora.core.auth import Scope
from agora.core.services import task_output, tasks
from agora_sdk.wire import tasks as w

from ..tool import Tool

WRITE = frozenset({Scope.tasks_write.value})
READ = frozenset({Scope.tasks_read.value})
ADDED = date(2026, 11, 25)  # reassign, set_priority, requeue_dead_letter (for the web console)

TOOLS = [
    Tool(
        name="agora.task.assign",
        version="1.0.0",
        description=(
            "Queue a task for an agent (id or name) or for any agent with the required capabilities (the least-loaded "
            "active one is preferred). Dependencies, deadline, priority, max_attempts; an idempotency_key returns the "
            "same task on a resend."
        ),
        input_model=w.AssignTask,
        output_model=w.Assigned,
        handler=tasks.assign,
        scopes=WRITE,
    ),
    Tool(
        name="agora.task.assign_batch",
        version="1.0.0",
        description=(
            "Queue up to 100 tasks in one call and one transaction, each as agora.task.assign would; all are queued "
            "or, when one is refused (its index in the error's details), none. For producers of many tasks."
        ),
        input_model=w.AssignTasks,
        output_model=w.AssignedBatch,
        handler=tasks.assign_batch,
        scopes=WRITE,
    ),
    Tool(
        name="agora.task.claim",
        version="1.0.0",
        description=(
            "Take the next eligible task (assigned to the calling agent or matching its capabilities, dependencies met, "
            "highest priority then oldest) under a lease; 'wait' long-polls and wakes the moment work arrives."
        ),
        input_model=w.ClaimTask,
        output_model=w.Claimed,
        handler=tasks.claim,
        scopes=WRITE,
    ),
    Tool(
        name="agora.task.claim_batch",
        version="1.0.0",
        description=(
            "Take up to max_tasks eligible tasks at once, in claim order, each under its own lease; 'wait' long-polls "
            "until at least one is eligible. For workers that run several tasks at a time."
        ),
        input_model=w.ClaimTasks,
        output_model=w.ClaimedBatch,
        handler=tasks.claim_batch,
        scopes=WRITE,
    ),
    Tool(
        name="agora.task.heartbeat",
        version="1.0.0",
        description="Extend a claimed task's lease and report progress. A stale lease token is refused (409).",
        input_model=w.TaskHeartbeat,
        output_model=w.Task,
        handler=tasks.heartbeat,
        scopes=WRITE,
        new_work=False,
    ),
    Tool(
        name="agora.task.emit",
        version="1.0.0",
        description=(
            "Output of a running task, as it is made (an LLM's tokens, log lines, partial results): text or JSON chunks, "
            "stored in order and pushed to its watchers. Only the lease holder, with its lease token; a task keeps at most "
            "the hub's bound, and counts the rest in one overflow chunk."
        ),
        input_model=w.EmitOutput,
        output_model=w.Emitted,
        handler=task_output.emit,
        scopes=WRITE,
        new_work=False,
    ),
    Tool(
        name="agora.task.watch",
        version="1.0.0",
        description=(
            "A task's output after a cursor (after: the last chunk number you have), waiting up to 'wait' seconds for "
            "more; 'ended' once the task has finished and you have every chunk. Live: GET /tasks/{task_id}/output/stream (SSE)."
        ),
        input_model=w.WatchOutput,
        output_model=w.TaskOutput,
        handler=task_output.watch,
        scopes=READ,
        read_only=True,
    ),
    Tool(
        name="agora.task.update",
        version="1.0.0",
        description=(
            "Report progress, notes or a result, or finish a task (completed, failed — with retry to go back to the "
            "queue — or cancelled). Finishing a claimed task needs its current lease token; finished tasks never change."
        ),
        input_model=w.UpdateTask,
        output_model=w.Task,
        handler=tasks.update,
        scopes=WRITE,
        new_work=False,
    ),
    Tool(
        name="agora.task.update_batch",
        version="1.0.0",
        description=(
            "Up to 100 updates in one call and one transaction; each succeeds or fails on its own (a stale lease "
            "changes nothing and is reported with its error code in its place), so one lost lease never holds back "
            "the other results. With claim_next, the calling agent then takes its next tasks in the same transaction: "
            "a worker reports and takes work in one round trip."
        ),
        input_model=w.UpdateTasks,
        output_model=w.UpdatedBatch,
        handler=tasks.update_batch,
        scopes=WRITE,
        new_work=False,
    ),
    Tool(
        name="agora.task.cancel",
        version="1.0.0",
        description="Cancel a pending or running task; tasks that depend on it fail unless they run anyway.",
        input_model=w.CancelTask,
        output_model=w.Task,
        handler=tasks.cancel,
        scopes=WRITE,
        new_work=False,
    ),
    Tool(
        name="agora.task.requeue",
        version="1.0.0",
        description="Put a dead-lettered or failed task back in the queue (attempts counted again from zero by default).",
        input_model=w.Requeue,
        output_model=w.Task,
        handler=tasks.requeue,
        scopes=WRITE,
    ),
    Tool(
        name="agora.task.reassign",
        version="1.0.0",
        description=(
            "Give a task a new assignee (an agent of its tenant, id or name) or new required_capabilities. Any task "
            "but a completed or cancelled one: a running task loses its lease (its holder's next heartbeat or update "
            "is refused, 409), a failed or dead-lettered one goes back to the queue; the task is pending for its new "
            "target, attempts counted from zero, and the claimers that may take it now are woken."
        ),
        input_model=w.Reassign,
        output_model=w.Task,
        handler=tasks.reassign,
        scopes=WRITE,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.task.set_priority",
        version="1.0.0",
        description="Change the priority of a pending or running task (claims take higher priorities first).",
        input_model=w.SetPriority,
        output_model=w.Task,
        handler=tasks.set_priority,
        scopes=WRITE,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.task.requeue_dead_letter",
        version="1.0.0",
        description=(
            "Put up to 'limit' dead-lettered tasks back in the queue in one transaction, oldest first, attempts "
            "counted from zero (by type, and for the admin by tenant); has_more says whether more are left. An "
            "agent's key reaches the tasks it created or was assigned."
        ),
        input_model=w.RequeueDeadLetters,
        output_model=w.RequeuedDeadLetters,
        handler=tasks.requeue_dead_letter,
        scopes=WRITE,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.task.get",
        version="1.0.0",
        description="One task with its status, lease holder, attempts, result and last error.",
        input_model=w.TaskRef,
        output_model=w.Task,
        handler=tasks.get,
        scopes=READ,
        read_only=True,
    ),
    Tool(
        name="agora.task.list",
        version="1.0.0",
        description="Tasks by agent, status, type or workflow; sorted by priority, deadline or creation; limit/offset with total and has_more, or a cursor.",
        input_model=w.ListTasks,
        output_model=w.TaskList,
        handler=tasks.list_tasks,
        scopes=READ,
        read_only=True,
    ),
    Tool(
        name="agora.task.history",
        version="1.0.0",
        description="Every transition of a task, with who made it and when.",
        input_model=w.TaskRef,
        output_model=w.TaskHistory,
        handler=tasks.history,
        scopes=READ,
        read_only=True,
    ),
    Tool(
        name="agora.task.stats",
        version="1.0.0",
        description="Queue depth by status and type, the oldest waiting task's age, leases in flight, the dead-letter count.",
        input_model=w.StatsRequest,
        output_model=w.TaskStats,
        handler=tasks.stats,
        scopes=READ,
        read_only=True,
    ),
]
