"""A working agent in ten lines: answers every message with its own text, and every "echo" task with its payload."""

from agora_sdk import Agent

agent = Agent("EchoAgent", capabilities=["echo"])


@agent.on_message()
async def echo(msg):
    await msg.reply({"echo": msg.content})


@agent.on_task("echo")
async def echo_task(task):
    return task.payload


if __name__ == "__main__":
    agent.run()
