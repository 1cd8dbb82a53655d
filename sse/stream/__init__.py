"""A stream's life in aiohttp, whatever the wire protocol.

``writer`` (one client's event stream), ``race`` (sibling tasks, the first
to end ends the others), ``generation`` (providers in order -> events -> an
encoder -> a sink), ``answer`` (a chat answered on its request: the race,
the finish, the bookkeeping), ``chat_stream`` (the direct stream),
``completion`` (one body), ``registry`` (what is alive, for shutdown).
"""
