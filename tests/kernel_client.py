"""A minimal Jupyter kernel client over the server's websocket (through the hub's proxy),
to run code in a real kernel from tests."""

from __future__ import annotations

import asyncio
import json
import os
import uuid

import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


class KernelClient:
    def __init__(self, base_url: str, token: str, kernel_id: str | None = None, resolver=None):
        self.base_url = base_url.rstrip("/")  # e.g. http://127.0.0.1:8000/user/alice
        self.token = token
        self.kernel_id = kernel_id
        self.resolver = resolver  # a tornado Resolver, e.g. to reach a server on a Unix socket
        self.session = uuid.uuid4().hex
        self.ws = None

    def start_kernel(self, name: str = "python3") -> str:
        response = requests.post(f"{self.base_url}/api/kernels", json={"name": name}, timeout=60,
                                 headers={"Authorization": f"token {self.token}"})
        response.raise_for_status()
        self.kernel_id = response.json()["id"]
        return self.kernel_id

    def use_kernel(self, kernel_id: str) -> None:
        self.kernel_id = kernel_id

    async def connect(self, timeout: float = 30) -> None:
        url = f"{self.base_url.replace('http', 'ws', 1)}/api/kernels/{self.kernel_id}/channels?session_id={self.session}"
        # A private CA for wss:// as for https:// (requests reads REQUESTS_CA_BUNDLE itself).
        request = HTTPRequest(url, headers={"Authorization": f"token {self.token}"}, connect_timeout=timeout,
                              request_timeout=timeout, ca_certs=os.environ.get("REQUESTS_CA_BUNDLE"))
        self.ws = await asyncio.wait_for(websocket_connect(request, resolver=self.resolver), timeout)

    async def execute(self, code: str, timeout: float = 60) -> str:
        """Run code; return what it printed (stdout) and the value of its last expression."""
        msg_id = uuid.uuid4().hex
        message = {
            "header": {"msg_id": msg_id, "username": "test", "session": self.session, "msg_type": "execute_request",
                       "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }
        await self.ws.write_message(json.dumps(message))
        output = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            raw = await asyncio.wait_for(self.ws.read_message(), max(0.1, deadline - loop.time()))
            if raw is None:
                raise ConnectionError("the kernel's websocket closed")
            reply = json.loads(raw)
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = reply["header"]["msg_type"]
            if kind == "stream":
                output.append(reply["content"]["text"])
            elif kind == "execute_result":
                output.append(reply["content"]["data"].get("text/plain", ""))
            elif kind == "error":
                raise RuntimeError(f"{reply['content']['ename']}: {reply['content']['evalue']}")
            elif kind == "status" and reply["content"]["execution_state"] == "idle":
                return "".join(output)

    async def aclose(self) -> None:
        """Close the websocket and wait until its TCP connection is really closed."""
        ws, self.ws = self.ws, None
        if ws is None:
            return
        ws.close()
        try:
            while await asyncio.wait_for(ws.read_message(), 2) is not None:
                pass
        except (asyncio.TimeoutError, OSError):
            pass
        stream = getattr(getattr(ws, "protocol", None), "stream", None)
        if stream is not None and not stream.closed():
            stream.close()
