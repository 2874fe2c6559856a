# Seed 000, "Advanced Python Integration", with AsyncAgoraClient where the seed awaits and the final two awaits
# inside asyncio.run (a script cannot await at top level).
from agora_sdk import AsyncAgoraClient as AgoraClient, AgoraError
from agora_sdk.types import TaskStatus, MessageType
import asyncio
import logging

class DocumentationAgent:
    def __init__(self):
        self.client = AgoraClient()
        self.agent_id = None

    async def initialize(self):
        """Initialize agent with error handling"""
        try:
            registration = await self.client.register(
                agent_name="DocumentationAgent",
                capabilities=["documentation", "review", "editing"],
                service_tier="premium"
            )
            self.agent_id = registration.agent_id

            # Subscribe to relevant events
            await self.client.messaging.subscribe(
                agent_id=self.agent_id,
                event_types=["task_assigned", "workflow_updated"]
            )

            logging.info(f"Agent initialized: {self.agent_id}")

        except AgoraError as e:
            logging.error(f"Initialization failed: {e}")
            raise

    async def process_tasks(self):
        """Process assigned tasks"""
        tasks = await self.client.task.list(
            agent_id=self.agent_id,
            status="pending"
        )

        for task in tasks:
            try:
                # Update task status
                await self.client.task.update(
                    task_id=task.task_id,
                    status=TaskStatus.IN_PROGRESS,
                    progress=0
                )

                # Process the task (implementation specific)
                result = await self.process_documentation_task(task)

                # Update completion
                await self.client.task.update(
                    task_id=task.task_id,
                    status=TaskStatus.COMPLETED,
                    progress=100,
                    notes=f"Completed: {result}"
                )

            except Exception as e:
                await self.client.task.update(
                    task_id=task.task_id,
                    status=TaskStatus.FAILED,
                    notes=f"Error: {str(e)}"
                )

    async def process_documentation_task(self, task):
        """Process specific documentation task"""
        # Implementation for documentation processing
        return "Documentation updated successfully"

# Usage
async def main():
    agent = DocumentationAgent()
    await agent.initialize()
    await agent.process_tasks()

asyncio.run(main())
