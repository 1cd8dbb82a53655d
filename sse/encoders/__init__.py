"""Wire protocols: each module turns a stream's typed events into one protocol's bytes.

Standard library only, like the rest of the core; ``base`` is the seam
(``Encoder``, ``StreamMeta``, ``StreamSummary``) every module implements.
"""
