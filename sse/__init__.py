"""llm-sse: streams an LLM's tokens to the browser as Server-Sent Events.

The package is split in two layers (see ARCHITECTURE.md):

* the core -- ``events``, ``frames``, ``ndjson``, ``eventstream``, ``chat``,
  ``errors``, ``settings``, ``streamlog``, ``limits``, ``auth``, ``cors``,
  ``injection``, ``openapi`` -- uses the standard library only and does no
  I/O, so it can be tested exhaustively and reused anywhere;
* the edges -- ``server``, ``relay``, ``cli``, ``protect``, ``redis_limits``
  and ``providers`` -- speak HTTP through aiohttp (and Redis through redis-py).
"""

__version__ = "0.1.0"
