"""One thin module per `mlops` command: parse options, call one function, print.

``ALL`` lists them in the order ``mlops --help`` shows (alphabetical there anyway)."""

from mlgitops.commands import deploy, gc, init, monitor, promote, pull, rollback, run, schema, serve, status, validate, webhook
from mlgitops.commands import demo

ALL = [run.run, validate.validate, deploy.deploy, promote.promote, rollback.rollback, status.status, serve.serve, pull.pull, gc.gc, webhook.webhook, monitor.monitor, init.init, schema.schema, demo.demo]
