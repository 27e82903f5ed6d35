"""A job after it is accepted: status documents, control, listing, batches, recorded outcomes."""
