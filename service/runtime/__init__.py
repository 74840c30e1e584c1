"""The ``atlas serve`` process: intake, per-home pipeline, scheduler and HTTP in one lifespan."""
