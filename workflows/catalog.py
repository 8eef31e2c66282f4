"""This application's catalog: the shipped pipelines, collected for the API, the worker and migrations
(the ``catalog`` setting names it: ``workflows.catalog:CATALOG``). Adding a pipeline is one entry here
(docs/events.md)."""

from longhaul.sdk import Catalog
from workflows.cleanup import CLEANUP
from workflows.demo import DEMO
from workflows.digests import DIGESTS
from workflows.hello import HELLO_PIPELINE
from workflows.orders import ORDERS
from workflows.tickets import TICKETS
from workflows.video import VIDEO

CATALOG = Catalog(HELLO_PIPELINE, VIDEO, DIGESTS, CLEANUP, ORDERS, TICKETS, DEMO)
