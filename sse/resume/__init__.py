"""Resumable streams, beside ``sse.stream``: a generation that outlives its connection.

``generation`` writes a stream's frames to a ``framelog``; ``follower``
replays and follows them for one client; ``memory`` keeps this process's
streams and finds one to resume or cancel; ``redis`` shares them between
instances; ``token`` binds a stream to its client.
"""
