"""Tool handlers: ``async def handler(ctx: CallContext, request) -> result``, knowing nothing of transports."""
