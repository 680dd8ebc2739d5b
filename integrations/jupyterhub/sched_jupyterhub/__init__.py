"""A JupyterHub spawner that runs each user's single-user server as a task on the scheduler.

    c.JupyterHub.spawner_class = 'sched_jupyterhub.SchedulerSpawner'

The pure parts (resources, state) import without JupyterHub; the spawner itself needs it.
"""

import logging

# A library does not print: the hub passes its own logger; without one, nothing is shown.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["SchedulerSpawner"]


def __getattr__(name):
    if name == "SchedulerSpawner":
        from .spawner import SchedulerSpawner
        return SchedulerSpawner
    raise AttributeError(name)
