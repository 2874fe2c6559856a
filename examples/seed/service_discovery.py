# Seed 000, "Service Discovery Mechanism", as written.
# Automatic service discovery
from agora_sdk import AgoraClient

client = AgoraClient()

# Discover all available services
services = client.discovery.list()

# Discover services by category
messaging_services = client.discovery.list(category="messaging")

# Discover services by version
current_services = client.discovery.list(status="active")

# Get service schema
schema = client.discovery.schema("agora.messaging.send", version="1.0.0")

print(f"{len(services)} services, {len(messaging_services)} for messaging, {len(current_services)} active; {schema.name}")
