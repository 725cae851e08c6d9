"""The Logs tab's websocket: relays a `LogStream` to the page as small JSON messages.

Messages: ``{"state": "open", "sources": [[pod, container], ...]}`` first, then
``{"lines": [[pod, stamp, text], ...], "skipped": N, "ended": [[pod, reason], ...]}`` as lines
arrive, ``{"state": "caught-up"}`` once every source has sent what the cluster held when the
socket opened (until then the page is catching up), ``{"state": "ended"}`` when every source
has ended, ``{"error": "..."}`` for a request
that names no container of the deployment (the socket then closes with 4400). Outsiders are
refused in connect() with 4404 and no stream is opened. The stream closes with the socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.http import Http404

from deployments.access import deployment_for
from deployments.cluster.errors import ClusterError
from deployments.consumers import open_sockets, take_socket
from deployments.logs.sources import BadLogRequest, log_sources, parse_resume
from deployments.logs.streams import LogStream

logger = logging.getLogger(__name__)

CLOSE_BAD_REQUEST = 4400
BATCH_PAUSE = 0.05  # between messages to one socket: a chatty container's lines go in batches
# A container printing faster than anyone reads (lines/s) gets fewer, larger messages: the web process
# then spends its time on pages, not on frames (100 viewers of 200 lines/s: 500 frames/s, not 2000).
CHATTY_RATE, CHATTY_PAUSE = 100, 0.2


class LogConsumer(AsyncWebsocketConsumer):
    stream: LogStream | None = None
    relay: asyncio.Task | None = None
    counted_user: int | None = None

    async def connect(self):
        deployment = await sync_to_async(self._deployment)()
        if deployment is None:
            await self.close(code=4404)
            return
        if not await take_socket(self):
            return
        await self.accept()
        query = parse_qs(self.scope.get("query_string", b"").decode())

        def one(name: str) -> str:
            return query.get(name, [""])[0][:253]

        try:
            resume = parse_resume(query.get("resume", []))
            sources = await sync_to_async(log_sources)(
                deployment,
                pod=one("pod"),
                component=one("component"),
                container=one("container"),
                source=one("source"),
            )
        except (BadLogRequest, ClusterError) as error:
            await self.send(text_data=json.dumps({"error": str(error)}))
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        self.stream = LogStream(
            namespace=deployment.namespace,
            sources=sources,
            previous=one("previous") in ("1", "true"),
            resume=resume,
        ).start()
        await self.send(text_data=json.dumps({"state": "open", "sources": [[s.pod, s.container] for s in sources]}))
        self.relay = asyncio.create_task(self._relay())

    def _deployment(self):
        deployment_id = self.scope["url_route"]["kwargs"]["deployment_id"]
        try:
            deployment, _ = deployment_for(self.scope["user"], deployment_id)
        except (Http404, PermissionDenied):
            return None
        return deployment

    async def _relay(self) -> None:
        behind = {source.pod for source in self.stream.sources}
        sent_at = time.monotonic()
        try:
            while (batch := await self.stream.read()) is not None:
                now = time.monotonic()
                rate = len(batch.lines) / max(now - sent_at, BATCH_PAUSE)
                sent_at = now
                if batch.lines or batch.skipped or batch.ended:
                    # Each line is encoded once for every viewer of it (`LogLine.wire`), not once per viewer.
                    lines = ",".join(line.wire() for line in batch.lines)
                    ended = json.dumps([list(end) for end in batch.ended])
                    await self.send(text_data=f'{{"lines":[{lines}],"skipped":{batch.skipped},"ended":{ended}}}')
                if behind and (batch.caught_up or batch.ended):
                    behind.difference_update(batch.caught_up, (pod for pod, _ in batch.ended))
                    if not behind:
                        await self.send(text_data=json.dumps({"state": "caught-up"}))
                await asyncio.sleep(CHATTY_PAUSE if rate > CHATTY_RATE else BATCH_PAUSE)
            await self.send(text_data=json.dumps({"state": "ended"}))
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the socket went away under us, or a bug: log, end the stream
            logger.debug("relaying a log stream ended", exc_info=True)
        finally:
            await self.stream.close()

    async def disconnect(self, code):
        if self.relay is not None:
            self.relay.cancel()
        if self.stream is not None:
            await self.stream.close()
        if self.counted_user is not None:
            open_sockets.give_back(self.counted_user)
            self.counted_user = None
