"""Running tasks: the queue, the workers, the isolated executor and the reaper."""
