"""The job code each real system's workers load: a Celery app, an RQ job, a Dramatiq actor, a
Sidekiq job class in Ruby. Each calls the shared work of ``deploysim.sim.chaos.real.work`` (the
Ruby job writes the same records)."""
