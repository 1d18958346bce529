"""Errors that carry a one-line, user-facing message (the CLI prints them and exits 2)."""


class SersweepError(ValueError):
    """Base class: bad input the user can fix. The message is one line."""


class DataError(SersweepError):
    """The h5 corpus breaks the data contract.

    Args:
        path: the h5 file.
        key: the dataset inside it (or ``None`` for the file itself).
        problem: what was expected and what was found.
    """

    def __init__(self, path: str, key: str | None, problem: str) -> None:
        where = f"{path}:{key}" if key else str(path)
        super().__init__(f"{where}: {problem}")
        self.path, self.key, self.problem = path, key, problem

    def __reduce__(self):  # rebuilt from its fields when it crosses a process boundary
        return (self.__class__, (self.path, self.key, self.problem))


class ConfigError(SersweepError):
    """A configuration value is wrong: ``where`` names the file and key."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where, self.problem = where, problem

    def __reduce__(self):
        return (self.__class__, (self.where, self.problem))
