# Seed 000, "New v5 approach": the three-line start, as written.
from agora_sdk import AgoraClient

# V5 agent initialization
client = AgoraClient()
client.register("MyAgent", capabilities=["documentation", "analysis"])

# Immediately start using services
client.messaging.send("DocSystemAgent", "Hello from v5!", priority="normal")
client.task.assign("review_document", {"file": "spec.md"}, assignee="ReviewAgent")
