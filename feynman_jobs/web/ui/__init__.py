"""The operator pages: rq-dashboard with our templates and JSON job classes, and the costs page."""
