"""agora.workflow.*"""

from agora.core.auth import Scope
from agora.core.services import workflows
from agora_sdk.wire import workflows as w

from ..tool import Tool

WRITE = frozenset({Scope.workflows_write.value})
READ = frozenset({Scope.workflows_read.value})

TOOLS = [
    Tool(
        name="agora.workflow.create",
        version="1.0.0",
        description=(
            "Start a multi-agent workflow: steps run as tasks when their dependencies are done (each step depends on "
            "the one before unless depends_on says otherwise), in parallel where they can; inputs can read the "
            "workflow input and earlier results (${steps.extract.result.rows}); 'when' skips a step; approval steps "
            "wait for agora.workflow.signal; for_each fans out over a list. fail_fast or continue on failure."
        ),
        input_model=w.CreateWorkflow,
        output_model=w.WorkflowCreated,
        handler=workflows.create,
        scopes=WRITE,
    ),
    Tool(
        name="agora.workflow.define",
        version="1.0.0",
        description="Save a workflow under a name, to run it many times (agora.workflow.run); defining a name again "
        "makes its next version. The steps are checked now, as create checks them.",
        input_model=w.DefineWorkflow,
        output_model=w.WorkflowDefinition,
        handler=workflows.define,
        scopes=WRITE,
    ),
    Tool(
        name="agora.workflow.run",
        version="1.0.0",
        description="Start a saved workflow (its latest version, or the one named) with an input.",
        input_model=w.RunWorkflow,
        output_model=w.WorkflowCreated,
        handler=workflows.run,
        scopes=WRITE,
    ),
    Tool(
        name="agora.workflow.status",
        version="1.0.0",
        description="A workflow's status and progress, and each step's state, agent, timings, result or error; "
        "mermaid=true adds the DAG as a Mermaid flowchart.",
        input_model=w.StatusRequest,
        output_model=w.WorkflowStatus,
        handler=workflows.status,
        scopes=READ,
        read_only=True,
    ),
    Tool(
        name="agora.workflow.list",
        version="1.0.0",
        description="The caller's workflows, newest first, by status; cursor pagination.",
        input_model=w.ListWorkflows,
        output_model=w.WorkflowList,
        handler=workflows.list_workflows,
        scopes=READ,
        read_only=True,
    ),
    Tool(
        name="agora.workflow.modify",
        version="1.0.0",
        description="Change a running workflow: add steps, remove or rewire (depends_on) or reassign steps that have not "
        "started. Refused, naming the step, for a started or finished step or a change that makes a cycle.",
        input_model=w.ModifyWorkflow,
        output_model=w.WorkflowStatus,
        handler=workflows.modify,
        scopes=WRITE,
    ),
    Tool(
        name="agora.workflow.cancel",
        version="1.0.0",
        description="Stop a running workflow: its unfinished steps and their tasks are cancelled.",
        input_model=w.CancelWorkflow,
        output_model=w.WorkflowStatus,
        handler=workflows.cancel,
        scopes=WRITE,
    ),
    Tool(
        name="agora.workflow.signal",
        version="1.0.0",
        description="Approve (with data the next steps read) or reject an approval step that is waiting.",
        input_model=w.Signal,
        output_model=w.WorkflowStatus,
        handler=workflows.signal,
        scopes=WRITE,
    ),
]
