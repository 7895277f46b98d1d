"""The daemon's HTTP routes, one router per resource (CONTRACT.md "HTTP"): ``verify`` (checks
and their results), ``chip``, ``ops`` (health, metrics, stats), ``kiosk`` (the patient's
stream), ``pages`` (the HTML pages), ``login`` (mounted when staff login is required) and
``demo`` (mounted only on a demo terminal). ``deps`` holds the typed dependencies they share."""
