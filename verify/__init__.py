"""Card and ID models, QR parsing, benefit rules, eligibility decisions and the registry.

Pure core modules (no I/O): ``errors``, ``model``, ``dates``, ``ids``, ``qr``, ``tables``,
``eligibility``, ``registry``, ``fingerprint``. Adapters: ``registry_client`` (httpx) and
``registry_sim`` (FastAPI + sqlite3).
"""
