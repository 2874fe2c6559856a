# Seed 000, Python SDK "Basic Usage", with AsyncAgoraClient where the seed awaits.
from agora_sdk import AsyncAgoraClient as AgoraClient
import asyncio

async def main():
    # Initialize client
    client = AgoraClient()
    
    # Register agent
    registration = await client.register(
        agent_name="PythonAgent",
        capabilities=["data_analysis", "documentation"],
        service_tier="basic"
    )
    
    # Use messaging service
    message_result = await client.messaging.send(
        to_agent="DataTeam",
        content="Python analysis complete",
        message_type="task_completion",
        priority="normal"
    )
    
    # Create a workflow
    workflow = await client.workflow.create(
        workflow_name="data_pipeline",
        steps=[
            {"name": "extract", "agent": "DataExtractor"},
            {"name": "transform", "agent": "DataTransformer"},
            {"name": "load", "agent": "DataLoader"}
        ],
        assigned_agents=["DataExtractor", "DataTransformer", "DataLoader"]
    )
    
    # Query available agents
    agents = await client.query.agents(
        capabilities=["data_analysis"],
        status="active"
    )
    
    print(f"Registration: {registration.agent_id}")
    print(f"Message sent: {message_result.message_id}")
    print(f"Workflow created: {workflow.workflow_id}")
    print(f"Found {len(agents)} data analysis agents")

# Run example
asyncio.run(main())
