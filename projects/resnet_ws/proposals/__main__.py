"""``python -m projects.resnet_ws.proposals ...``: see ``projects.resnet_ws.proposals.cli``."""

from .cli import main

if __name__ == "__main__":
    main()
