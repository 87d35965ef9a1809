"""Scale scanning out: the microengine publishes scan jobs on a Redis stream, ``worker`` processes scan them.

* :mod:`.jobs` is pure: the job and result records as stream fields, stream names, the deadline maths, the
  ``redis://`` address check;
* :mod:`.connection` opens redis-py's asyncio client (the only module, with the two below, that imports
  ``redis``, an optional extra) and reads Redis's clock;
* :mod:`.producer` is the microengine's scan step when ``--scan-queue`` is given: one job per artifact,
  results awaited within the bounty's deadline;
* :mod:`.worker` is the ``worker`` command's service: a consumer group member that fetches, scans, writes
  the result and only then acknowledges, and claims the jobs of workers that died.

See docs/scaling.md.
"""
