"""``python -m projects.common.checkpoint``: the converter's command line (see ``cli``)."""
from .cli import main

if __name__ == "__main__":
    main()
