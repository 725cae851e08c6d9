"""The embedded mode's channel layer: in memory, and safe to send to from other threads.

In standalone mode the watcher and the worker are threads of the web process.
Channels' in-memory layer keeps asyncio queues that belong to the web server's
event loop; a send from another thread's loop would touch them unsafely and
might not wake the consumer. Here such a send hops onto the loop the
consumers receive on.
"""

import asyncio

from channels.layers import InMemoryChannelLayer


class InProcessChannelLayer(InMemoryChannelLayer):
    _home_loop: asyncio.AbstractEventLoop | None = None

    async def receive(self, channel):
        self._home_loop = asyncio.get_running_loop()
        return await super().receive(channel)

    def _elsewhere(self) -> asyncio.AbstractEventLoop | None:
        home = self._home_loop
        if home is None or home.is_closed() or not home.is_running():
            return None
        return home if home is not asyncio.get_running_loop() else None

    async def send(self, channel, message):
        home = self._elsewhere()
        if home is None:
            return await super().send(channel, message)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(super().send(channel, message), home))

    async def group_send(self, group, message):
        home = self._elsewhere()
        if home is None:
            return await super().group_send(group, message)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(super().group_send(group, message), home))
