"""Named settings as flags: a frozen dataclass of numbers becomes one flag per field."""

import dataclasses


class FlagSettings:
    """Mixed into a dataclass whose fields are ints and floats. `FLAG_PREFIX` ("retry"
    gives --retry-attempts; "" gives --attempts) names its flags."""

    FLAG_PREFIX = ""

    @classmethod
    def _flag(cls, name: str) -> tuple[str, str]:
        prefix = f"{cls.FLAG_PREFIX}-" if cls.FLAG_PREFIX else ""
        return f"--{prefix}{name.replace('_', '-')}", f"{cls.__name__.lower()}_{name}"

    @classmethod
    def add_arguments(cls, parser) -> None:
        for field in dataclasses.fields(cls):
            flag, dest = cls._flag(field.name)
            what = field.metadata.get("help", field.name.replace("_", " "))
            parser.add_argument(flag, type=field.type if field.type in (int, float) else float,
                                default=field.default, dest=dest, metavar="N", help=what)

    @classmethod
    def from_args(cls, args):
        return cls(**{f.name: getattr(args, cls._flag(f.name)[1]) for f in dataclasses.fields(cls)})
