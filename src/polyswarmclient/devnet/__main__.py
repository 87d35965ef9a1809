"""``python -m polyswarmclient.devnet``: the same as ``polyswarmd-devnet``."""

from polyswarmclient.cli.devnet import main

if __name__ == "__main__":
    main()
