"""The plugin's own warning class, so users can filter it."""


class BgTasksWarning(UserWarning):
    """A behaviour of pytest-bgtasks that differs from production, worth knowing about."""
