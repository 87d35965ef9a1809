"""Operations: the Prometheus exporter of :mod:`polyswarmclient.metrics` and the server of ``--metrics-addr``.

Only this package imports prometheus-client; services record through :mod:`polyswarmclient.metrics`.
"""
