"""HTTP below the client library, as real clients and attackers speak it: several requests on one kept-alive
connection (http.client, in a thread), and raw bytes on a socket."""

import asyncio
import http.client
from urllib.parse import urlsplit


def one_connection(base_url: str) -> http.client.HTTPConnection:
    """A kept-alive connection to the test server, as a browser or mobile client holds one."""
    parts = urlsplit(base_url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)


def exchange(connection, method, path, body=None, headers=None):
    """(status, headers, body, client port) of one request on the connection."""
    connection.request(method, path, body=body, headers=headers or {})
    port = connection.sock.getsockname()[1]
    response = connection.getresponse()
    return response.status, response.headers, response.read(), port


async def run(blocking, *args):
    """http.client blocks: it runs in a thread while the server goes on serving on the IOLoop."""
    return await asyncio.get_running_loop().run_in_executor(None, blocking, *args)


async def raw_exchange(port: int, request: bytes) -> tuple:
    """Send request bytes on a fresh connection; return (status, headers dict, body) of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(reader.readexactly(length), 10) if length else b""
        return status, headers, body
    finally:
        writer.close()
