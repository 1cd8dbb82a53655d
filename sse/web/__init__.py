"""The HTTP service in aiohttp, in modules by audience.

``app`` builds the application and its runner; ``boundary`` is the error
boundary every answer passes (JSON errors, ``Expect``, unknown routes);
``chat`` is the chat API (``POST /api/chat``), ``models`` lists the models,
``resume`` reads and cancels resumable streams, ``ops`` answers operators
(health, readiness, metrics, the OpenAPI document), ``page`` serves the chat
page.  ``keys`` names the application's shared state.
"""
