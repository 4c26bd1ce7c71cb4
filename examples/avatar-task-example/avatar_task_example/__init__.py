"""An example third-party Avatar task package (see README.md).

The task is registered by ``avatar_task_example.task``, which Avatar imports through the
``avatar.plugins`` entry point; importing this package alone registers nothing, so it
stays cheap to import.
"""
