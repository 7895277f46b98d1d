"""The path one verification takes, one small unit per step::

    credential in          intake.py     QR text / typed numbers / chip identity → Credential
         │                               (parsing itself is pure: verify/qr.py, credentials.py)
    registry or offline    lookup.py     the gateway within the budget; else journal, snapshot;
         │                               late answers and re-checks of offline answers
    decision               verify/eligibility.py (pure)
         │
    record and publish     record.py     privacy window, shift list, metrics, audit record
                                         (written by its own thread), the ``eligibility`` event

``verifier.py`` strings them together; ``terminal/chip/`` feeds it chip reads;
``offers.py`` keeps a CCCD QR's chip keys for the next card on the reader.
"""
