"""A local engageSPARK stand-in: the Subscription API on loopback, with faults on demand.

``make demo``, rehearsals ("try your import against the sandbox first"), tests
and benchmarks talk to it over a real socket. It answers like the documented
API (``/api/v1/engagements/{id}/contacts/`` and ``/api/v1/customfields``) and,
when asked, like a bad day: 429 and 503 before processing, 500, connection
resets and slow answers after processing, and results in shuffled order.
``GET /_sandbox/state`` shows what it holds; any other path gets a web
server's HTML 404, as a wrong API URL would.

It can start with an account's existing contacts, read from an engageSPARK
contacts export (``--contacts FILE``, :func:`load_contacts`): they subscribe by
id and are reused by number. Its own new contacts are numbered from
:data:`FIRST_CONTACT_ID` (90000001), above them and clear of real accounts' ids.

Faults (``--faults "NAME=VALUE,..."``; rates from 0 to 1, per subscription request):

- ``429``, ``503``: refuse before processing (429 always with ``Retry-After``,
  503 sometimes); ``retry_after`` is the seconds they ask for (default 1).
- ``500``: a plain-text 500 after processing.
- ``reset``: drop the connection with a TCP reset after processing.
- ``slow``: wait ``slow_seconds`` (default 2) after processing, then answer.
- ``nodata``: after processing, answer a 2xx without the documented
  ``{"data": [...]}``: a bare list of the contacts (201), an HTML page (200)
  or no body at all (204), as a gateway in between might.
- ``trickle``: after processing, write the answer one byte every
  ``trickle_ms`` milliseconds (default 1000), headers and body alike.
- ``shuffle``: return the contacts of a 201 in another order (combines with
  any fault that answers them).
"""

from __future__ import annotations

from bulkimport.sandbox.existing import load_contacts
from bulkimport.sandbox.faults import NO_FAULTS, Faults
from bulkimport.sandbox.server import DEFAULT_CUSTOM_FIELDS, SANDBOX_TOKEN, Sandbox, serve
from bulkimport.sandbox.state import FIRST_CONTACT_ID

__all__ = [
    "DEFAULT_CUSTOM_FIELDS",
    "FIRST_CONTACT_ID",
    "NO_FAULTS",
    "SANDBOX_TOKEN",
    "Faults",
    "Sandbox",
    "load_contacts",
    "serve",
]
