"""The ``agora`` command: runs the hub and talks to one."""
