"""The processes besides web: the RQ worker class and its config, the scheduler and its periodic jobs."""
