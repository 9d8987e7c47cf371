"""`python -m kizuna`: the `kizuna` command."""

from kizuna.cli import main

if __name__ == "__main__":
    main()
